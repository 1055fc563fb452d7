"""The order statuses and the shape of the lifecycle, defined once.

    PENDING -> PROCESSING -> PACKAGING -> SHIPPED -> DELIVERED
    PENDING / PROCESSING / PACKAGING -> CANCELED   (by the customer)
    any non-terminal status          -> FAILED     (no stock, or stale)

The names are those of the public enum fulfillment.orders.v1.Order.Status (without its
STATUS_UNSPECIFIED); tests/unit/test_lifecycle_status.py keeps the two equal.
"""

from __future__ import annotations

import enum


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    PACKAGING = "PACKAGING"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"


NORMAL_PATH: tuple[OrderStatus, ...] = (
    OrderStatus.PENDING,
    OrderStatus.PROCESSING,
    OrderStatus.PACKAGING,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
)
FIRST_STATUS = NORMAL_PATH[0]
TERMINAL = frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELED, OrderStatus.FAILED})
NON_TERMINAL: tuple[OrderStatus, ...] = tuple(s for s in OrderStatus if s not in TERMINAL)
CANCELABLE: tuple[OrderStatus, ...] = (
    OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.PACKAGING
)
# The two ways out of the normal path.
ENDED_EARLY = frozenset({OrderStatus.CANCELED, OrderStatus.FAILED})


def is_terminal(status: OrderStatus) -> bool:
    return status in TERMINAL


def next_on_normal_path(status: OrderStatus) -> OrderStatus | None:
    """Where the normal path goes from `status`; None at its end or off it."""
    if status not in NORMAL_PATH or status is NORMAL_PATH[-1]:
        return None
    return NORMAL_PATH[NORMAL_PATH.index(status) + 1]


def has_reached(current: OrderStatus, target: OrderStatus) -> bool:
    """An order now at `current` made the step to `target` at some point: it is there or
    further along the normal path. A CANCELED or FAILED order reached no later status."""
    if current is target:
        return True
    return (
        current in NORMAL_PATH
        and target in NORMAL_PATH
        and NORMAL_PATH.index(current) > NORMAL_PATH.index(target)
    )
