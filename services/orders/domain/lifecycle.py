"""The order lifecycle: which status may follow which. The only place these rules live.

    PENDING -> PROCESSING -> PACKAGING -> SHIPPED -> DELIVERED
    PENDING / PROCESSING / PACKAGING -> CANCELED   (by the customer)
    any non-terminal status          -> FAILED     (no stock, or stale)
"""

from __future__ import annotations

import enum

from services.orders.domain.errors import IllegalTransition, OrderNotCancelable


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    PACKAGING = "PACKAGING"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"


NORMAL_PATH = (
    OrderStatus.PENDING,
    OrderStatus.PROCESSING,
    OrderStatus.PACKAGING,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
)
TERMINAL = frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELED, OrderStatus.FAILED})
NON_TERMINAL = tuple(s for s in OrderStatus if s not in TERMINAL)
CANCELABLE = (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.PACKAGING)
FIRST_STATUS = OrderStatus.PENDING


def is_terminal(status: OrderStatus) -> bool:
    return status in TERMINAL


def is_transition(from_status: OrderStatus, to_status: OrderStatus) -> bool:
    if from_status in TERMINAL:
        return False
    if to_status is OrderStatus.FAILED:
        return True
    if to_status is OrderStatus.CANCELED:
        return from_status in CANCELABLE
    return _next_on_normal_path(from_status) is to_status


def has_reached(current: OrderStatus, target: OrderStatus) -> bool:
    """True when an order now at `current` already made the step to `target` earlier.

    Only the normal path moves forward through `target`: an order that was CANCELED or
    FAILED never reached any later normal status.
    """
    if current is target:
        return True
    return (
        current in NORMAL_PATH
        and target in NORMAL_PATH
        and NORMAL_PATH.index(current) > NORMAL_PATH.index(target)
    )


def is_next_step(from_status: OrderStatus, to_status: OrderStatus) -> bool:
    """`to_status` is where the normal path goes from `from_status`."""
    return _next_on_normal_path(from_status) is to_status


def require_transition(order_id: str, from_status: OrderStatus, to_status: OrderStatus) -> None:
    if not is_transition(from_status, to_status):
        raise IllegalTransition.not_in_lifecycle(order_id, from_status, to_status)


def judge_missed_advance(
    order_id: str, current: OrderStatus, expected: OrderStatus, to_status: OrderStatus
) -> None:
    """An advance found the order not at `expected`: a repeat is fine, anything else is not.

    Returns normally when the step was already applied (a redelivered task); raises
    IllegalTransition naming the order's actual status otherwise.
    """
    if not has_reached(current, to_status):
        raise IllegalTransition.wrong_status(order_id, current, expected, to_status)


def require_cancelable(order_id: str, current: OrderStatus) -> None:
    if current not in CANCELABLE:
        raise OrderNotCancelable(order_id, current, CANCELABLE)


def _next_on_normal_path(status: OrderStatus) -> OrderStatus | None:
    if status not in NORMAL_PATH or status is NORMAL_PATH[-1]:
        return None
    return NORMAL_PATH[NORMAL_PATH.index(status) + 1]
