"""The principal a handler acts for: its actor label and where handlers find it."""

from __future__ import annotations

import asyncio

import pytest

from services.common.auth.principal import (
    NoPrincipal,
    Principal,
    Role,
    acting_as,
    current_principal,
    set_current_principal,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("roles", "actor"),
    [
        ({Role.CUSTOMER}, "customer:u1"),
        ({Role.SERVICE}, "service:u1"),
        ({Role.ADMIN}, "admin:u1"),
        ({Role.CUSTOMER, Role.ADMIN}, "admin:u1"),
        ({Role.CUSTOMER, Role.SERVICE}, "service:u1"),
        (set(Role), "admin:u1"),
    ],
)
def test_the_actor_is_the_most_privileged_role(roles: set[Role], actor: str) -> None:
    assert Principal("u1", frozenset(roles)).actor == actor


def test_a_principal_without_a_role_has_no_actor() -> None:
    with pytest.raises(ValueError, match="has no role"):
        _ = Principal("u1", frozenset()).actor


def test_the_anonymous_admin_acts_as_an_admin() -> None:
    assert Principal.anonymous_admin().actor == "admin:anonymous"


def test_outside_an_admitted_call_there_is_no_principal() -> None:
    with pytest.raises(NoPrincipal, match="outside an RPC"):
        current_principal()


def test_acting_as_restores_what_was_before() -> None:
    alice = Principal("alice", frozenset({Role.CUSTOMER}))
    with acting_as(alice):
        assert current_principal() is alice
    with pytest.raises(NoPrincipal):
        current_principal()


def test_each_task_sees_its_own_principal() -> None:
    async def handler(name: str, started: asyncio.Barrier) -> str:
        set_current_principal(Principal(name, frozenset({Role.CUSTOMER})))
        await started.wait()  # every other task has set its own by now
        return current_principal().subject

    async def main() -> list[str]:
        started = asyncio.Barrier(20)
        return await asyncio.gather(*(handler(f"c{i}", started) for i in range(20)))

    assert asyncio.run(main()) == [f"c{i}" for i in range(20)]
