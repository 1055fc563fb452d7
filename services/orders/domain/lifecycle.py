"""The order lifecycle's rules: which status may follow which. The only place these rules
live; the statuses and the path themselves are the shared vocabulary of
services/common/lifecycle/status.py.
"""

from __future__ import annotations

from services.common.lifecycle.status import (
    CANCELABLE,
    TERMINAL,
    OrderStatus,
    has_reached,
    next_on_normal_path,
)
from services.orders.domain.errors import IllegalTransition, OrderNotCancelable


def is_transition(from_status: OrderStatus, to_status: OrderStatus) -> bool:
    if from_status in TERMINAL:
        return False
    if to_status is OrderStatus.FAILED:
        return True
    if to_status is OrderStatus.CANCELED:
        return from_status in CANCELABLE
    return next_on_normal_path(from_status) is to_status


def is_next_step(from_status: OrderStatus, to_status: OrderStatus) -> bool:
    """`to_status` is where the normal path goes from `from_status`."""
    return next_on_normal_path(from_status) is to_status


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
