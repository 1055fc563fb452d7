from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.common.pagination import (
    MAX_PAGE_SIZE,
    decode_page_token,
    encode_page_token,
    every_page,
    resolve_page_size,
)
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as pb


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
    token = encode_page_token("products", ["not-an-id"])
    assert decode_page_token(encode_page_token("products", [5]), "products", parse=lambda k: k[0]) == 5
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_page_token(token, "products", parse=lambda k: int(k[0]))
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_page_token(token, "products", parse=lambda k: k[0].no_such_attribute)
