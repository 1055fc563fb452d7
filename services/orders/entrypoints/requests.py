"""Turn proto requests into domain values and commands; bad input becomes InvalidArgument."""

from __future__ import annotations

import uuid

from services.common.errors import Validator
from services.common.lifecycle.status import OrderStatus
from services.common.pagination import MAX_PAGE_SIZE
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as lifecycle_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.common.text import check_text
from services.orders.domain.lifecycle import is_next_step
from services.orders.domain.model import OrderFilters, parse_order_id
from services.orders.domain.order_requests import (
    CUSTOMER_NAME_MAX_LENGTH,
    OrderRequest,
    RequestedItem,
    check_customer_id,
    check_note,
    check_seconds,
    invalid,
)
from services.orders.service_layer.transitions import AdvanceOrder, ClaimStaleOrders

DEFAULT_CLAIM_LIMIT = 100


def order_request(request: orders_pb2.CreateOrderRequest) -> OrderRequest:
    return OrderRequest(
        customer_name=request.customer_name,
        items=tuple(RequestedItem(item.product_id, item.quantity) for item in request.items),
        request_id=request.request_id,
        customer_id=request.customer_id,
    )


def order_id(
    request: orders_pb2.GetOrderRequest
    | orders_pb2.ListOrderHistoryRequest
    | orders_pb2.CancelOrderRequest
    | orders_pb2.WatchOrderRequest,
) -> uuid.UUID:
    return parse_order_id(request.order_id)


def order_filters(request: orders_pb2.ListOrdersRequest) -> OrderFilters:
    customer_name = request.customer_name.strip()
    validator = Validator()
    check_text(
        validator, "customer_name", customer_name, max_length=CUSTOMER_NAME_MAX_LENGTH, required=False
    )
    check_customer_id(validator, "customer_id", request.customer_id)
    validator.raise_if_invalid()
    return OrderFilters(
        status=optional_status(request.status, "status"),
        customer_name=customer_name or None,
        customer_id=request.customer_id or None,
    )


def advance_command(request: lifecycle_pb2.AdvanceOrderRequest, actor: str) -> AdvanceOrder:
    parsed_id = parse_order_id(request.order_id)
    validator = Validator()
    expected = optional_status(request.expected_status, "expected_status")
    to_status = optional_status(request.to_status, "to_status")
    validator.check(expected is not None, "expected_status", "must be set")
    validator.check(to_status is not None, "to_status", "must be set")
    check_note(validator, "note", request.note)
    check_seconds(validator, "next_step_due_in_seconds", request.next_step_due_in_seconds)
    then: list[OrderStatus] = []
    previous = to_status
    for index, value in enumerate(request.then_statuses):
        status = optional_status(value, f"then_statuses[{index}]")
        if not validator.check(
            status is not None and previous is not None and is_next_step(previous, status),
            f"then_statuses[{index}]",
            "must be the next status on the lifecycle path after "
            + (previous.value if previous else "to_status"),
        ):
            break
        assert status is not None
        then.append(status)
        previous = status
    validator.raise_if_invalid()
    assert expected is not None and to_status is not None
    return AdvanceOrder(
        parsed_id, expected, to_status, request.note, request.next_step_due_in_seconds,
        tuple(then), actor,
    )


def claim_command(request: lifecycle_pb2.ClaimStaleOrdersRequest) -> ClaimStaleOrders:
    validator = Validator()
    validator.check(request.limit >= 0, "limit", "must be >= 0 (0 means the default)")
    check_seconds(validator, "stale_after_seconds", request.stale_after_seconds)
    check_seconds(validator, "lease_seconds", request.lease_seconds, positive=True)
    validator.raise_if_invalid()
    return ClaimStaleOrders(
        limit=min(request.limit or DEFAULT_CLAIM_LIMIT, MAX_PAGE_SIZE),
        stale_after_s=request.stale_after_seconds,
        lease_s=request.lease_seconds,
    )


def optional_status(value: int, field_path: str) -> OrderStatus | None:
    """A proto Order.Status as a domain status; UNSPECIFIED is None."""
    if value == orders_pb2.Order.STATUS_UNSPECIFIED:
        return None
    try:
        return OrderStatus(orders_pb2.Order.Status.Name(value))
    except ValueError:
        raise invalid(field_path, f"unknown status {value}") from None
