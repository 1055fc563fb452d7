from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.common.pagination import (
    MAX_PAGE_SIZE,
    decode_page_token,
    encode_page_token,
    resolve_page_size,
)


def test_page_size_zero_means_default_and_large_is_clamped() -> None:
    assert resolve_page_size(0) == 50
    assert resolve_page_size(7) == 7
    assert resolve_page_size(10**9) == MAX_PAGE_SIZE


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as info:
        resolve_page_size(-1)
    assert info.value.violations[0].field == "page_size"


def test_token_round_trips_and_empty_means_first_page() -> None:
    token = encode_page_token("orders", ["2026-01-01T00:00:00", "abc"], {"status": 1})
    assert decode_page_token(token, "orders", {"status": 1}) == ["2026-01-01T00:00:00", "abc"]
    assert decode_page_token("", "orders") is None


@pytest.mark.parametrize("token", ["garbage", "!!!", "eyJrIjoxfQ", "a" * 5000])
def test_garbage_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_page_token(token, "orders")


def test_token_from_other_collection_or_filters_is_rejected() -> None:
    token = encode_page_token("products", [5])
    with pytest.raises(InvalidArgument):
        decode_page_token(token, "orders")
    token = encode_page_token("orders", [5], {"status": 1})
    with pytest.raises(InvalidArgument):
        decode_page_token(token, "orders", {"status": 2})
