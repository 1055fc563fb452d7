"""Validation of order requests and their idempotency fingerprint."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.orders.domain.order_requests import (
    OrderRequest,
    RequestedItem,
    request_fingerprint,
    validate_order_request,
)

pytestmark = pytest.mark.unit


def request(name: str = "Ada", items=((1, 2),), request_id: str = "") -> OrderRequest:
    return OrderRequest(name, tuple(RequestedItem(p, q) for p, q in items), request_id)


def test_customer_name_is_trimmed_and_an_empty_request_id_means_none():
    valid = validate_order_request(request("  Ada Lovelace  "))
    assert valid.customer_name == "Ada Lovelace"
    assert valid.request_id is None


@pytest.mark.parametrize(
    "bad, field_path",
    [
        (request(name="   "), "customer_name"),
        (request(name="x" * 201), "customer_name"),
        (request(name="Ada\x00"), "customer_name"),
        (request(items=()), "items"),
        (request(items=[(i, 1) for i in range(1, 102)]), "items"),
        (request(items=((0, 1),)), "items[0].product_id"),
        (request(items=((-5, 1),)), "items[0].product_id"),
        (request(items=((1, 0),)), "items[0].quantity"),
        (request(items=((1, -1),)), "items[0].quantity"),
        (request(items=((1, 1_000_001),)), "items[0].quantity"),
        (request(items=((1, 1), (2, 1), (1, 3))), "items[2].product_id"),
        (request(request_id="r" * 201), "request_id"),
    ],
)
def test_bad_requests_name_the_field(bad, field_path):
    with pytest.raises(InvalidArgument) as invalid:
        validate_order_request(bad)
    assert field_path in [v.field for v in invalid.value.violations]
    assert field_path in invalid.value.message


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidArgument) as invalid:
        validate_order_request(request(name="", items=((0, 0),)))
    assert [v.field for v in invalid.value.violations] == [
        "customer_name", "items[0].product_id", "items[0].quantity",
    ]


def test_fingerprint_ignores_item_order_but_not_quantities_or_customer():
    items = (RequestedItem(1, 2), RequestedItem(3, 4))
    same = request_fingerprint("Ada", items)
    assert request_fingerprint("Ada", tuple(reversed(items))) == same
    assert request_fingerprint("Ada", (RequestedItem(1, 2), RequestedItem(3, 5))) != same
    assert request_fingerprint("Grace", items) != same
