"""Who is calling: the roles of the contract and the principal a handler acts for."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


class Role(enum.Enum):
    ADMIN = "admin"
    CUSTOMER = "customer"
    SERVICE = "service"


# The order `actor` picks a principal's label in: the most privileged role first, so a
# token carrying both admin and customer acts (and is recorded) as the admin it is.
_BY_PRIVILEGE = (Role.ADMIN, Role.SERVICE, Role.CUSTOMER)

ANONYMOUS_SUBJECT = "anonymous"


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]

    @classmethod
    def anonymous_admin(cls) -> Principal:
        """Whom every call acts as when FULFILLMENT_AUTH=off (local experiments only)."""
        return cls(ANONYMOUS_SUBJECT, frozenset({Role.ADMIN}))

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def actor(self) -> str:
        """`admin:<sub>`, `service:<sub>` or `customer:<sub>`, as history entries record it.

        A principal without any role of ours is never let through by the policy, so it
        has no actor; asking for one is a bug in the caller."""
        for role in _BY_PRIVILEGE:
            if role in self.roles:
                return f"{role.value}:{self.subject}"
        raise ValueError(f"principal {self.subject!r} has no role, so it cannot act")


class NoPrincipal(RuntimeError):
    """current_principal() was called outside a call the auth interceptor let through."""


_current: ContextVar[Principal | None] = ContextVar("fulfillment_principal", default=None)


def current_principal() -> Principal:
    """The caller of the RPC being handled; the auth interceptor sets it in the handler's
    own task before the handler runs."""
    principal = _current.get()
    if principal is None:
        raise NoPrincipal(
            "no principal is set: this code runs outside an RPC that passed the auth "
            "interceptor (is AuthInterceptor registered on the server, first?)"
        )
    return principal


def set_current_principal(principal: Principal) -> None:
    """Called by the auth interceptor, and by tests that run a handler without a server.

    No reset token is kept: grpc.aio runs every RPC in its own task, and a task's context
    is a copy of its creator's, so the value ends with the RPC and never leaks into
    another one."""
    _current.set(principal)


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Run a block as `principal`, restoring whatever was set before: for code that calls
    handlers or the service layer without a server (tests, scripts)."""
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)
