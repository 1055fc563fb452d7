from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import string
import uuid
from collections.abc import Callable

import pytest

from services.common.config import ConfigError, Settings
from services.common.errors import InvalidArgument
from services.common.page_token_secret import page_token_source
from services.common.pagination import (
    MAX_INT64,
    MAX_PAGE_SIZE,
    PageTokens,
    every_page,
    int64_key,
    resolve_page_size,
)
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as pb

pytestmark = pytest.mark.unit


def test_page_size_zero_means_default_and_large_is_clamped() -> None:
    assert resolve_page_size(0) == 50
    assert resolve_page_size(7) == 7
    assert resolve_page_size(10**9) == MAX_PAGE_SIZE


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as info:
        resolve_page_size(-1)
    assert info.value.violations[0].field == "page_size"


TOKENS = PageTokens(b"unit-test page token secret")


def _as_list(key: list) -> list:
    return key


def _unsigned(body: object) -> str:
    raw = json.dumps(body).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _resigned(token: str, change: Callable[[dict], object], secret: bytes) -> str:
    """`token`'s body changed by `change` and signed again under `secret`."""
    signed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    body = json.loads(signed[16:])
    raw = json.dumps(change(body)).encode()
    tag = hmac.new(secret, raw, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(tag + raw).decode().rstrip("=")


def test_token_round_trips_and_empty_means_first_page() -> None:
    token = TOKENS.encode("orders", ["2026-01-01T00:00:00", "abc"], {"status": 1})
    assert TOKENS.decode(token, "orders", {"status": 1}, _as_list) == ["2026-01-01T00:00:00", "abc"]
    assert TOKENS.decode("", "orders", None, _as_list) is None


def test_token_is_url_safe_and_short() -> None:
    token = TOKENS.encode("orders", ["2026-01-01T00:00:00+00:00", str(uuid.uuid4())], {"s": "x"})
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert len(token) < 200


@pytest.mark.parametrize("token", ["garbage", "!!!", "eyJrIjoxfQ", "a" * 5000, "A", "AAAA" * 5])
def test_garbage_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        TOKENS.decode(token, "orders", None, _as_list)


def test_token_from_other_collection_or_filters_is_rejected() -> None:
    token = TOKENS.encode("products", [5])
    with pytest.raises(InvalidArgument):
        TOKENS.decode(token, "orders", None, _as_list)
    token = TOKENS.encode("orders", [5], {"status": 1})
    with pytest.raises(InvalidArgument):
        TOKENS.decode(token, "orders", {"status": 2}, _as_list)


def test_an_unsigned_token_is_refused_even_when_its_body_is_right() -> None:
    genuine = TOKENS.encode("products", [5])
    signed = base64.urlsafe_b64decode(genuine + "=" * (-len(genuine) % 4))
    body_only = base64.urlsafe_b64encode(signed[16:]).decode().rstrip("=")
    for forged in (body_only, _unsigned({"k": "products", "v": [5], "f": json.loads(signed[16:])["f"]})):
        with pytest.raises(InvalidArgument, match="page_token"):
            TOKENS.decode(forged, "products", None, _as_list)


def test_an_altered_token_is_refused() -> None:
    token = TOKENS.encode("products", [5])
    assert TOKENS.decode(token, "products", None, _as_list) == [5]
    altered = _resigned(token, lambda body: {**body, "v": [6]}, b"a secret the client guessed")
    with pytest.raises(InvalidArgument, match="page_token"):
        TOKENS.decode(altered, "products", None, _as_list)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for position in (0, 15, 16, len(raw) - 1):
        flipped = raw.copy()
        flipped[position] ^= 0x01
        tampered = base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("=")
        with pytest.raises(InvalidArgument, match="page_token"):
            TOKENS.decode(tampered, "products", None, _as_list)


def test_a_token_from_another_secret_is_refused_and_the_same_secret_reads_it() -> None:
    token = TOKENS.encode("products", [5])
    with pytest.raises(InvalidArgument, match="page_token"):
        PageTokens(b"another deployment's secret").decode(token, "products", None, _as_list)
    same_secret = PageTokens(b"unit-test page token secret")
    assert same_secret.decode(token, "products", None, _as_list) == [5]


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        PageTokens(b"short")


@pytest.mark.parametrize(
    "value", [0, -1, MAX_INT64 + 1, 2**64, 1.5, "5", True, None, [5], {"id": 5}]
)
def test_an_int64_key_outside_its_type_or_range_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        int64_key(value)


def test_an_int64_key_at_its_bounds_is_accepted() -> None:
    assert int64_key(1) == 1
    assert int64_key(MAX_INT64) == MAX_INT64
    assert int64_key(0, minimum=0) == 0


def test_a_signed_key_out_of_range_is_refused_by_the_parse() -> None:
    token = TOKENS.encode("products", [MAX_INT64 + 1])
    with pytest.raises(InvalidArgument, match="page_token"):
        TOKENS.decode(token, "products", None, lambda key: int64_key(key[0]))


def test_every_page_passes_each_token_on_and_leaves_the_request_as_it_was():
    pages = [pb.ListOrdersResponse(next_page_token=t) for t in ("a", "b", "")]
    sent: list[pb.ListOrdersRequest] = []

    def list_rpc(request, timeout):
        sent.append(pb.ListOrdersRequest.FromString(request.SerializeToString()))
        return pages[len(sent) - 1]

    request = pb.ListOrdersRequest(customer_name="ann", page_size=2)
    assert list(every_page(list_rpc, request, timeout=1)) == pages
    assert [r.page_token for r in sent] == ["", "a", "b"]
    assert {(r.customer_name, r.page_size) for r in sent} == {("ann", 2)}
    assert request.page_token == ""


def test_every_page_stops_a_list_that_never_ends():
    def endless(request, timeout):
        return pb.ListOrdersResponse(next_page_token="again")

    with pytest.raises(RuntimeError, match="3 pages"):
        list(every_page(endless, pb.ListOrdersRequest(), timeout=1, max_pages=3))


def test_a_key_the_callers_parse_refuses_is_an_altered_token():
    token = TOKENS.encode("products", ["not-an-id"])
    assert TOKENS.decode(TOKENS.encode("products", [5]), "products", None, lambda k: k[0]) == 5
    with pytest.raises(InvalidArgument, match="page_token"):
        TOKENS.decode(token, "products", None, lambda k: int(k[0]))
    with pytest.raises(InvalidArgument, match="page_token"):
        TOKENS.decode(token, "products", None, lambda k: k[0].no_such_attribute)


def test_settings_read_the_secret_and_never_print_it() -> None:
    settings = Settings.from_env({"FULFILLMENT_PAGE_TOKEN_SECRET": "s3cret-shared-by-replicas"})
    assert settings.page_token_secret == "s3cret-shared-by-replicas"
    assert "s3cret" not in repr(settings)
    assert Settings.from_env({}).page_token_secret == ""


def test_a_configured_secret_is_used_without_the_database() -> None:
    configured = Settings.from_env({"FULFILLMENT_PAGE_TOKEN_SECRET": "s3cret-shared-by-replicas"})
    no_database = None  # the configured secret must not need it
    source = page_token_source(configured, no_database, no_database)  # type: ignore[arg-type]
    tokens = asyncio.run(source.tokens())
    same = PageTokens(b"s3cret-shared-by-replicas")
    assert same.decode(tokens.encode("products", [5]), "products", None, _as_list) == [5]


def test_a_configured_secret_too_short_is_a_configuration_error() -> None:
    short = Settings.from_env({"FULFILLMENT_PAGE_TOKEN_SECRET": "short"})
    with pytest.raises(ConfigError, match="FULFILLMENT_PAGE_TOKEN_SECRET"):
        page_token_source(short, None, None)  # type: ignore[arg-type]
