"""Remembered verifications: the same token again costs no signature check, until it
expires or the key set it was checked against changes or is due for a re-read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import services.common.auth.verify as verify_module
from services.common.auth.key_set import KeySet
from services.common.auth.keys import public_jwk
from services.common.auth.mint import TokenMinter
from services.common.auth.principal import Principal, Role
from services.common.auth.verified_tokens import VerifiedTokens
from services.common.auth.verify import InvalidToken, TokenVerifier
from tests.auth_tokens import auth_settings, claims, sign

pytestmark = pytest.mark.unit

ALICE = Principal("alice", frozenset({Role.CUSTOMER}))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _key_set(clock: Clock) -> KeySet:
    key = ec.generate_private_key(ec.SECP256R1())

    def load() -> Mapping[str, Any]:
        return {"keys": [public_jwk(key.public_key())]}

    key_set = KeySet(load, "test", refresh_interval_s=5, max_age_s=300, clock=clock)
    key_set.refresh()
    return key_set


def test_the_same_token_again_costs_no_signature_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = auth_settings(tmp_path)
    verifier = TokenVerifier.from_settings(settings)
    token = TokenMinter(settings).mint([Role.SERVICE], "orders", 300)
    checks = []
    decode = verify_module.jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        checks.append(1)
        return decode(*args, **kwargs)

    monkeypatch.setattr(verify_module.jwt, "decode", counting_decode)
    principals = {verifier.verify(token) for _ in range(100)}
    assert principals == {Principal("orders", frozenset({Role.SERVICE}))}
    assert len(checks) == 1
    other = TokenMinter(settings).mint([Role.SERVICE], "worker", 300)
    assert verifier.verify(other).subject == "worker" and len(checks) == 2


def test_a_refused_token_is_never_remembered(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    verifier = TokenVerifier.from_settings(settings)
    forged = sign(ec.generate_private_key(ec.SECP256R1()), claims())
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(forged)


def test_a_remembered_token_is_forgotten_once_it_expires() -> None:
    clock = Clock(1000.0)
    key_set = _key_set(clock)
    remembered = VerifiedTokens(clock=clock)
    remembered.remember("t", ALICE, None, valid_until=1060.0, generation=key_set.generation)
    clock.now = 1059.9
    assert remembered.recall("t", key_set) == ALICE
    clock.now = 1060.0
    assert remembered.recall("t", key_set) is None
    clock.now = 1000.0
    assert remembered.recall("t", key_set) is None, "a forgotten token is checked in full again"


def test_a_remembered_token_is_forgotten_when_the_key_set_changes_or_is_due() -> None:
    clock = Clock(1000.0)
    key_set = _key_set(clock)
    remembered = VerifiedTokens(clock=clock)
    remembered.remember("t", ALICE, None, valid_until=5000.0, generation=key_set.generation - 1)
    assert remembered.recall("t", key_set) is None
    remembered.remember("u", ALICE, None, valid_until=5000.0, generation=key_set.generation)
    assert remembered.recall("u", key_set) == ALICE
    clock.now += 300  # the set is due for its re-read: the withdrawn keys check applies
    assert remembered.recall("u", key_set) is None


def test_memory_is_bounded() -> None:
    clock = Clock(1000.0)
    key_set = _key_set(clock)
    remembered = VerifiedTokens(max_size=3, clock=clock)
    for name in "abcd":
        remembered.remember(name, ALICE, None, valid_until=2000.0, generation=key_set.generation)
    assert [remembered.recall(name, key_set) for name in "abcd"] == [None, ALICE, ALICE, ALICE]
