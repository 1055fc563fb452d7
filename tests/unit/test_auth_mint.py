"""Minted tokens, and the service token source every service caller presents."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest

from services.common.auth.keys import key_id, write_public_jwks
from services.common.auth.mint import ServiceTokenSource, TokenMinter, mint_token
from services.common.auth.principal import Principal, Role
from services.common.auth.verify import TokenVerifier
from services.common.config import ConfigError
from tests.auth_tokens import auth_settings, local_key

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_minted_token_carries_every_claim_the_services_require(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    token = mint_token(settings, Role.ADMIN, "ops-1", 600)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == key_id(local_key(settings).public_key())
    body = jwt.decode(token, options={"verify_signature": False})
    assert body["iss"] == "fulfillment-dev" and body["aud"] == "fulfillment"
    assert body["sub"] == "ops-1" and body["roles"] == ["admin"]
    assert body["exp"] - body["iat"] == 600 and body["nbf"] == body["iat"]
    assert TokenVerifier.from_settings(settings).verify(token) == Principal("ops-1", frozenset({Role.ADMIN}))


def test_issuer_and_audience_follow_the_settings(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path, auth_issuer="https://shop.example", auth_audience="shop-api")
    body = jwt.decode(mint_token(settings, Role.CUSTOMER, "c-1", 60), options={"verify_signature": False})
    assert (body["iss"], body["aud"]) == ("https://shop.example", "shop-api")


@pytest.mark.parametrize(("subject", "ttl_s"), [("", 60), ("alice", 0), ("alice", -5)])
def test_a_token_needs_a_subject_and_a_positive_lifetime(tmp_path: Path, subject: str, ttl_s: float) -> None:
    with pytest.raises(ValueError):
        mint_token(auth_settings(tmp_path), Role.CUSTOMER, subject, ttl_s)


def test_the_service_token_is_minted_once_and_renewed_with_a_third_of_its_life_left(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    clock = Clock(1_800_000_000.0)
    source = ServiceTokenSource(settings, subject="lifecycle-worker", ttl_s=300, clock=clock)
    first = source()
    body = jwt.decode(first, options={"verify_signature": False})
    assert (body["sub"], body["roles"], body["exp"]) == ("lifecycle-worker", ["service"], 1_800_000_300)
    clock.now += 199
    assert source() is first
    clock.now += 1  # 100 s of 300 left
    renewed = source()
    assert renewed != first
    assert jwt.decode(renewed, options={"verify_signature": False})["exp"] == 1_800_000_500


def test_the_service_token_verifies_as_a_service(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    principal = TokenVerifier.from_settings(settings).verify(ServiceTokenSource(settings, "orders")())
    assert principal.actor == "service:orders"


def test_concurrent_callers_share_one_minted_token(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    source = ServiceTokenSource(settings, "monitor")
    minted: list[str] = []
    minter = TokenMinter(settings)
    lock = threading.Lock()

    class CountingMinter:
        def mint(self, *args: object, **kwargs: object) -> str:
            with lock:
                token = minter.mint(*args, **kwargs)  # type: ignore[arg-type]
                minted.append(token)
                return token

    source._minter = CountingMinter()  # type: ignore[assignment]
    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(lambda _: source(), range(400)))
    assert len(minted) == 1 and tokens == {minted[0]}


def test_a_configured_service_token_is_presented_as_it_is(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path, service_token="issued.by.idp", auth_jwks="https://idp.example/certs")
    assert ServiceTokenSource(settings, "worker")() == "issued.by.idp"
    assert not (tmp_path / "fulfillment").exists(), "no local key is needed, so none is created"


def test_an_external_key_set_without_a_service_token_fails_at_start(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path, auth_jwks="https://idp.example/certs")
    with pytest.raises(ConfigError, match="FULFILLMENT_SERVICE_TOKEN is required"):
        ServiceTokenSource(settings, "worker")


def test_a_key_set_file_holding_the_local_key_still_lets_services_mint(tmp_path: Path) -> None:
    published = write_public_jwks(auth_settings(tmp_path))
    copy = tmp_path / "mounted-jwks.json"
    copy.write_text(json.dumps(json.loads(published.read_text())))
    settings = auth_settings(tmp_path, auth_jwks=str(copy))
    token = ServiceTokenSource(settings, "worker")()
    assert TokenVerifier.from_settings(settings).verify(token).actor == "service:worker"
