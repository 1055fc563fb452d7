"""Every kind of bad input gets a precise status with a readable message, never INTERNAL."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.common.pagination import PageTokens
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as lifecycle_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.orders.service_layer.queries import ORDERS_PAGE_TOKEN_KIND, OrderFilters
from tests.auth_helpers import bearer_for
from tests.orders.integration.clients import Clients, Status, order_request, sql, unique_name
from tests.raw_grpc import LEAKED_INTERNALS, call_raw, invalid_utf8_request, rpc_methods

pytestmark = pytest.mark.integration

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
UNKNOWN_ID = str(uuid.uuid4())


@pytest.fixture(scope="module")
def product(clients: Clients) -> int:
    return clients.create_product()


@pytest.fixture(scope="module")
def shipped_order_id(clients: Clients, product: int) -> str:
    order = clients.create_order(unique_name(), [(product, 1)])
    for expected, to in [(Status.PENDING, Status.PROCESSING), (Status.PROCESSING, Status.PACKAGING),
                         (Status.PACKAGING, Status.SHIPPED)]:
        clients.advance(order.order_id, expected, to)
    return order.order_id


@pytest.fixture(scope="module")
def pending_order_id(clients: Clients, product: int) -> str:
    return clients.create_order(unique_name(), [(product, 1)]).order_id


@pytest.fixture(scope="module")
def canceled_order_id(clients: Clients, product: int) -> str:
    order = clients.create_order(unique_name(), [(product, 1)])
    clients.orders.CancelOrder(orders_pb2.CancelOrderRequest(order_id=order.order_id), timeout=30)
    return order.order_id


def create(name="Ada", items=None, request_id=""):
    return lambda c, p, _ids: c.orders.CreateOrder(
        order_request(name, items if items is not None else [(p, 1)], request_id), timeout=30
    )


def get(order_id):
    return lambda c, _p, _ids: c.orders.GetOrder(
        orders_pb2.GetOrderRequest(order_id=order_id), timeout=30
    )


def list_orders(**fields):
    return lambda c, _p, _ids: c.orders.ListOrders(
        orders_pb2.ListOrdersRequest(**fields), timeout=30
    )


def history(order_id):
    return lambda c, _p, _ids: c.orders.ListOrderHistory(
        orders_pb2.ListOrderHistoryRequest(order_id=order_id), timeout=30
    )


def cancel(order_id=None, reason="", which=None):
    return lambda c, _p, ids: c.orders.CancelOrder(
        orders_pb2.CancelOrderRequest(order_id=ids[which] if which else order_id, reason=reason),
        timeout=30,
    )


def watch(order_id):
    return lambda c, _p, _ids: list(
        c.orders.WatchOrder(orders_pb2.WatchOrderRequest(order_id=order_id), timeout=30)
    )


def advance(order_id=UNKNOWN_ID, which=None, **fields):
    defaults = {"expected_status": Status.PENDING, "to_status": Status.PROCESSING}
    return lambda c, _p, ids: c.lifecycle.AdvanceOrder(
        lifecycle_pb2.AdvanceOrderRequest(
            order_id=ids[which] if which else order_id, **{**defaults, **fields}
        ),
        timeout=30,
    )


def claim(**fields):
    defaults = {"limit": 1, "stale_after_seconds": 3600, "lease_seconds": 60}
    return lambda c, _p, _ids: c.lifecycle.ClaimStaleOrders(
        lifecycle_pb2.ClaimStaleOrdersRequest(**{**defaults, **fields}), timeout=30
    )


def foreign_page_token(c, _p, _ids):
    first = c.orders.ListOrders(orders_pb2.ListOrdersRequest(page_size=1), timeout=30)
    return c.orders.ListOrders(
        orders_pb2.ListOrdersRequest(
            page_size=1, page_token=first.next_page_token, status=Status.SHIPPED
        ),
        timeout=30,
    )


# A token in the layout the server issues, but unsigned: what a client that read one
# could make up.
UNSIGNED_PAGE_TOKEN = base64.urlsafe_b64encode(
    json.dumps(
        {"k": ORDERS_PAGE_TOKEN_KIND, "v": ["2026-01-01T00:00:00+00:00", UNKNOWN_ID], "f": ""}
    ).encode()
).decode().rstrip("=")
# Signed, but under another deployment's secret.
FOREIGN_PAGE_TOKEN = PageTokens(b"another deployment's secret").encode(
    ORDERS_PAGE_TOKEN_KIND, ["2026-01-01T00:00:00+00:00", UNKNOWN_ID],
    OrderFilters().as_token_filters(),
)

CASES: dict[str, tuple[Callable, grpc.StatusCode, str]] = {
    "create: empty customer_name": (create(name="  "), INVALID, "customer_name"),
    "create: customer_name too long": (create(name="x" * 201), INVALID, "customer_name"),
    "create: no items": (create(items=[]), INVALID, "items"),
    "create: quantity 0": (create(items=[(1, 0)]), INVALID, "items[0].quantity"),
    "create: negative quantity": (create(items=[(1, -3)]), INVALID, "items[0].quantity"),
    "create: product_id 0": (create(items=[(0, 1)]), INVALID, "items[0].product_id"),
    "create: duplicate product": (create(items=[(1, 1), (1, 2)]), INVALID, "items[1].product_id"),
    "create: too many items": (
        create(items=[(i, 1) for i in range(1, 102)]), INVALID, "items",
    ),
    "create: request_id too long": (create(request_id="r" * 201), INVALID, "request_id"),
    # PostgreSQL refuses a NUL in text; it must be refused before it gets there.
    "create: NUL in request_id": (create(request_id="r\x00"), INVALID, "request_id"),
    "create: NUL in customer_name": (create(name="A\x00da"), INVALID, "customer_name"),
    "create: unknown product": (create(items=[(8_000_000_000_000, 1)]), NOT_FOUND, "8000000000000"),
    "get: not a uuid": (get("order-1"), INVALID, "order_id"),
    "get: empty id": (get(""), INVALID, "order_id"),
    "get: unknown order": (get(UNKNOWN_ID), NOT_FOUND, UNKNOWN_ID),
    "list: negative page_size": (list_orders(page_size=-1), INVALID, "page_size"),
    "list: garbage page_token": (list_orders(page_token="not-a-token"), INVALID, "page_token"),
    "list: token from other filters": (foreign_page_token, INVALID, "page_token"),
    "list: unsigned page_token": (
        list_orders(page_token=UNSIGNED_PAGE_TOKEN), INVALID, "page_token",
    ),
    "list: page_token of another deployment": (
        list_orders(page_token=FOREIGN_PAGE_TOKEN), INVALID, "page_token",
    ),
    "list: NUL in customer_name": (list_orders(customer_name="A\x00da"), INVALID, "customer_name"),
    "list: unknown status": (list_orders(status=99), INVALID, "status"),
    "history: not a uuid": (history("42"), INVALID, "order_id"),
    "history: unknown order": (history(UNKNOWN_ID), NOT_FOUND, UNKNOWN_ID),
    "cancel: not a uuid": (cancel("x"), INVALID, "order_id"),
    "cancel: unknown order": (cancel(UNKNOWN_ID), NOT_FOUND, UNKNOWN_ID),
    "cancel: reason too long": (cancel(UNKNOWN_ID, reason="r" * 501), INVALID, "reason"),
    "cancel: NUL in reason": (cancel(which="pending", reason="no\x00"), INVALID, "reason"),
    "cancel: shipped order": (cancel(which="shipped"), PRECONDITION, "order is SHIPPED"),
    "cancel: canceled order": (cancel(which="canceled"), PRECONDITION, "order is CANCELED"),
    "watch: not a uuid": (watch("nope"), INVALID, "order_id"),
    "watch: unknown order": (watch(UNKNOWN_ID), NOT_FOUND, UNKNOWN_ID),
    "advance: not a uuid": (advance("nope"), INVALID, "order_id"),
    "advance: unspecified statuses": (
        advance(expected_status=0, to_status=0), INVALID, "expected_status",
    ),
    "advance: negative due time": (advance(next_step_due_in_seconds=-1), INVALID, "next_step"),
    "advance: not a lifecycle step": (
        advance(expected_status=Status.PENDING, to_status=Status.SHIPPED), PRECONDITION,
        "PENDING -> SHIPPED",
    ),
    "advance: NUL in note": (advance(which="pending", note="done\x00"), INVALID, "note"),
    "advance: unknown order": (advance(UNKNOWN_ID), NOT_FOUND, UNKNOWN_ID),
    "advance: canceled order": (advance(which="canceled"), PRECONDITION, "is CANCELED"),
    "claim: negative limit": (claim(limit=-1), INVALID, "limit"),
    "claim: zero lease": (claim(lease_seconds=0), INVALID, "lease_seconds"),
    "claim: endless grace": (claim(stale_after_seconds=1e300), INVALID, "stale_after_seconds"),
    "advance: due time beyond reason": (
        advance(next_step_due_in_seconds=float("inf")), INVALID, "next_step",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_a_precise_readable_status(
    case, clients, product, pending_order_id, shipped_order_id, canceled_order_id
):
    call, expected_code, mentioned = CASES[case]
    ids = {"pending": pending_order_id, "shipped": shipped_order_id, "canceled": canceled_order_id}
    with pytest.raises(grpc.RpcError) as failure:
        call(clients, product, ids)
    assert failure.value.code() == expected_code, failure.value.details()
    assert mentioned in failure.value.details()
    if expected_code == INVALID:
        status = rpc_status.from_call(failure.value)
        assert status is not None
        violations = error_details_pb2.BadRequest()
        assert any(d.Unpack(violations) for d in status.details)
        assert violations.field_violations


@pytest.fixture(scope="module")
def page_tokens(database_url: str) -> PageTokens:
    """Signs as the server does: no client can, a test can read the stored secret."""
    [(secret,)] = sql(database_url, "SELECT secret FROM orders.page_token_secret")
    return PageTokens(bytes(secret))


# Keys no server ever signs: each part of the key of the wrong type or out of range.
SIGNED_BAD_KEYS = {
    "order id a number": ["2026-01-01T00:00:00+00:00", 5],
    "order id not a uuid": ["2026-01-01T00:00:00+00:00", "order-1"],
    "time a number": [1767225600, UNKNOWN_ID],
    "time without zone": ["2026-01-01T00:00:00", UNKNOWN_ID],
    "time beyond year 9999": ["10000-01-01T00:00:00+00:00", UNKNOWN_ID],
    "time not a time": ["yesterday", UNKNOWN_ID],
    "one part": [UNKNOWN_ID],
    "three parts": ["2026-01-01T00:00:00+00:00", UNKNOWN_ID, 1],
    "nested": [["2026-01-01T00:00:00+00:00"], {"id": UNKNOWN_ID}],
}


@pytest.mark.parametrize("key", list(SIGNED_BAD_KEYS.values()), ids=list(SIGNED_BAD_KEYS))
def test_a_signed_page_token_with_a_bad_key_is_invalid_argument(clients, page_tokens, key):
    token = page_tokens.encode(ORDERS_PAGE_TOKEN_KIND, key, OrderFilters().as_token_filters())
    with pytest.raises(grpc.RpcError) as failure:
        clients.orders.ListOrders(orders_pb2.ListOrdersRequest(page_token=token), timeout=30)
    assert failure.value.code() == INVALID, failure.value.details()
    assert "page_token" in failure.value.details()


@pytest.fixture(scope="module")
def orders_channel(orders_server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(orders_server.addr) as channel:
        yield channel


ORDERS_RPCS = rpc_methods(
    orders_pb2.DESCRIPTOR.services_by_name["OrderService"],
    lifecycle_pb2.DESCRIPTOR.services_by_name["OrderLifecycleService"],
)
UTF8_RPCS = [m for m in ORDERS_RPCS if invalid_utf8_request(m.input_type) is not None]


@pytest.mark.parametrize("method", ORDERS_RPCS, ids=[m.name for m in ORDERS_RPCS])
@pytest.mark.parametrize("body", [b"\x00", b"\x0a\x05ab", b"\xff" * 12], ids=["nul", "truncated", "ff"])
def test_a_corrupt_request_body_is_invalid_argument_in_plain_words(
    orders_channel, settings, method, body
):
    result = call_raw(orders_channel, method, [body], metadata=bearer_for(settings, method))
    assert result.code == INVALID, (result.code, result.details)
    assert "not a valid" in result.details and method.input_type.full_name in result.details
    assert not LEAKED_INTERNALS.search(result.details), result.details
    assert result.bad_request() is not None


@pytest.mark.parametrize("method", UTF8_RPCS, ids=[m.name for m in UTF8_RPCS])
def test_invalid_utf8_in_a_string_field_is_invalid_argument(orders_channel, settings, method):
    result = call_raw(
        orders_channel, method, [invalid_utf8_request(method.input_type)],
        metadata=bearer_for(settings, method),
    )
    assert result.code == INVALID, (result.code, result.details)
    assert "UTF-8" in result.details
    assert not LEAKED_INTERNALS.search(result.details), result.details


def test_a_corrupt_message_mid_bulk_ends_the_stream_after_answering_those_before(
    clients, orders_channel, settings, product
):
    """The messages before the corrupt one are created and answered; the corrupt one and
    every message after it are not read, and the stream ends INVALID_ARGUMENT naming the
    corrupt message's index."""
    name = unique_name("bulk-corrupt")
    valid = [order_request(name, [(product, 1)]).SerializeToString() for _ in range(3)]
    bulk = orders_pb2.DESCRIPTOR.services_by_name["OrderService"].methods_by_name[
        "BulkCreateOrders"
    ]
    result = call_raw(
        orders_channel, bulk, [valid[0], valid[1], b"\x00", valid[2]],
        metadata=bearer_for(settings, bulk),
    )
    assert result.code == INVALID, (result.code, result.details)
    assert "request stream message 2 (0-based)" in result.details
    assert not LEAKED_INTERNALS.search(result.details), result.details
    answered = [orders_pb2.BulkCreateOrderResult.FromString(raw) for raw in result.responses]
    assert [r.index for r in answered] == [0, 1]
    assert all(r.status.code == 0 and r.order.order_id for r in answered)
    listed = clients.orders.ListOrders(orders_pb2.ListOrdersRequest(customer_name=name), timeout=30)
    assert sorted(o.order_id for o in listed.orders) == sorted(r.order.order_id for r in answered)
