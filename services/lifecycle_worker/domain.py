"""The worker's step rules: which step runs in which status, what may run at once, and how
a step's outcome is worded. Plain data and functions (no grpc, no celery).

The step run while an order sits in a status moves it to the next status on the normal
path (services.common.lifecycle.status); the PROCESSING step is the one that reserves
stock.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.common.lifecycle.ports import Shortfall
from services.common.lifecycle.status import ENDED_EARLY, OrderStatus, has_reached, next_on_normal_path

RESERVING_STEP = OrderStatus.PROCESSING


def steps_without_reserving(status: OrderStatus) -> tuple[OrderStatus, ...]:
    """The statuses the steps after reaching `status` lead to, up to the next reserving
    step or the end of the path: what can run at once when steps take no time."""
    following: list[OrderStatus] = []
    while status is not RESERVING_STEP and (after := next_on_normal_path(status)) is not None:
        following.append(after)
        status = after
    return tuple(following)


def is_past(status: OrderStatus, reference: OrderStatus) -> bool:
    """The order, now at `status`, has left `reference` behind: further along the normal
    path, or ended early (CANCELED, FAILED)."""
    return status in ENDED_EARLY or (status is not reference and has_reached(status, reference))


def shortfall_note(shortfalls: Iterable[Shortfall]) -> str:
    """e.g. 'insufficient stock: product 12 requested 3, available 1; product 14 ...'."""
    parts = []
    for short in sorted(shortfalls, key=lambda s: s.product_id):
        available = "unknown" if short.available is None else str(short.available)
        parts.append(
            f"product {short.product_id} requested {short.requested}, available {available}"
        )
    return "insufficient stock: " + "; ".join(parts)
