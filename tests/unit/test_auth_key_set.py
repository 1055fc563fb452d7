"""The key set's cache: read once, re-read on an unknown kid at most every few seconds,
re-read when old, and a failed read keeps the keys already held."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from services.common.auth.key_set import KeySet, KeysUnavailable
from services.common.auth.keys import public_jwk
from services.common.auth.principal import Role
from services.common.auth.verify import InvalidToken, TokenVerifier
from tests.auth_tokens import claims, sign

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    """An identity provider's JWKS endpoint as a loader: counts reads, rotates keys."""

    def __init__(self) -> None:
        self.keys = [ec.generate_private_key(ec.SECP256R1())]
        self.reads = 0
        self.down = False

    def __call__(self) -> Mapping[str, Any]:
        self.reads += 1
        if self.down:
            raise OSError("connection refused")
        return {"keys": [public_jwk(key.public_key()) for key in self.keys]}

    def rotate(self) -> ec.EllipticCurvePrivateKey:
        self.keys.append(ec.generate_private_key(ec.SECP256R1()))
        return self.keys[-1]


def _verifier(issuer: Callable[[], Mapping[str, Any]], clock: Clock) -> TokenVerifier:
    key_set = KeySet(issuer, "test issuer", refresh_interval_s=5.0, max_age_s=300.0, clock=clock)
    key_set.refresh()
    return TokenVerifier(key_set, issuer="fulfillment-dev", audience="fulfillment", roles_claim="roles")


def test_known_keys_are_never_read_again_per_request() -> None:
    issuer, clock = Issuer(), Clock()
    verifier = _verifier(issuer, clock)
    token = sign(issuer.keys[0], claims())
    for _ in range(100):
        clock.now += 1  # 100 s, within max_age
        assert verifier.verify(token).roles == frozenset({Role.CUSTOMER})
    assert issuer.reads == 1


def test_an_unknown_kid_is_read_again_once_then_refused() -> None:
    issuer, clock = Issuer(), Clock()
    verifier = _verifier(issuer, clock)
    clock.now += 10
    stranger = sign(ec.generate_private_key(ec.SECP256R1()), claims())
    with pytest.raises(InvalidToken, match="does not know"):
        verifier.verify(stranger)
    assert issuer.reads == 2
    with pytest.raises(InvalidToken, match="does not know"):
        verifier.verify(stranger)
    assert issuer.reads == 2


def test_a_flood_of_made_up_kids_costs_one_read_per_interval() -> None:
    issuer, clock = Issuer(), Clock()
    verifier = _verifier(issuer, clock)
    clock.now += 10
    for n in range(200):
        with pytest.raises(InvalidToken, match="does not know"):
            verifier.verify(sign(issuer.keys[0], claims(), kid=f"made-up-{n}"))
    assert issuer.reads == 2
    clock.now += 5
    with pytest.raises(InvalidToken):
        verifier.verify(sign(issuer.keys[0], claims(), kid="made-up-again"))
    assert issuer.reads == 3


def test_a_rotated_in_key_is_found_by_reading_the_set_again() -> None:
    issuer, clock = Issuer(), Clock()
    verifier = _verifier(issuer, clock)
    clock.now += 10
    new_key = issuer.rotate()
    assert verifier.verify(sign(new_key, claims(sub="bob"))).subject == "bob"
    assert issuer.reads == 2


def test_a_withdrawn_key_stops_being_trusted_once_the_set_is_old() -> None:
    issuer, clock = Issuer(), Clock()
    verifier = _verifier(issuer, clock)
    old_key = issuer.keys[0]
    issuer.keys = [ec.generate_private_key(ec.SECP256R1())]
    assert verifier.verify(sign(old_key, claims())).subject == "alice"  # still cached
    clock.now += 301
    with pytest.raises(InvalidToken, match="does not know"):
        verifier.verify(sign(old_key, claims()))


def test_a_failed_read_keeps_the_keys_already_held() -> None:
    issuer, clock = Issuer(), Clock()
    verifier = _verifier(issuer, clock)
    issuer.down = True
    clock.now += 301
    assert verifier.verify(sign(issuer.keys[0], claims())).subject == "alice"
    assert issuer.reads == 2


def test_without_any_key_set_read_every_token_meets_keys_unavailable() -> None:
    issuer, clock = Issuer(), Clock()
    issuer.down = True
    key_set = KeySet(issuer, "test issuer", clock=clock)
    with pytest.raises(KeysUnavailable, match="test issuer could not be read"):
        key_set.refresh()
    verifier = TokenVerifier(key_set, issuer="fulfillment-dev", audience="fulfillment", roles_claim="roles")
    with pytest.raises(KeysUnavailable):
        verifier.verify(sign(issuer.keys[0], claims()))
    assert issuer.reads == 1, "the failed read is not retried within the interval"
    issuer.down = False
    clock.now += 5
    assert verifier.verify(sign(issuer.keys[0], claims())).subject == "alice"


def test_verify_async_reads_the_set_off_the_event_loop() -> None:
    issuer, clock = Issuer(), Clock()
    verifier = _verifier(issuer, clock)
    reading_threads: list[str] = []
    original = issuer.__call__

    def recording_load() -> Mapping[str, Any]:
        reading_threads.append(threading.current_thread().name)
        return original()

    verifier.keys._load = recording_load  # type: ignore[method-assign]
    clock.now += 10
    new_key = issuer.rotate()

    async def verify() -> str:
        return (await verifier.verify_async(sign(new_key, claims()))).subject

    assert asyncio.run(verify()) == "alice"
    assert reading_threads and reading_threads[0] != threading.main_thread().name

