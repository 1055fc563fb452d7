"""Every kind of bad input gets a precise status with a readable message, never INTERNAL."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.common.pagination import encode_page_token
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as lifecycle_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.orders.service_layer.queries import ORDERS_PAGE_TOKEN_KIND, OrderFilters
from tests.orders.integration.clients import Clients, Status, order_request, unique_name

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


# Well-formed and signed for no filters, but its order id is a number: a token nobody
# issued, which must be refused like any other altered token.
NUMBER_FOR_ORDER_ID_TOKEN = encode_page_token(
    ORDERS_PAGE_TOKEN_KIND, ["2026-01-01T00:00:00+00:00", 5], OrderFilters().as_token_filters()
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
    "list: altered page_token": (
        list_orders(page_token=NUMBER_FOR_ORDER_ID_TOKEN), INVALID, "page_token",
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
