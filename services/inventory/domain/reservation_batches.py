"""Deciding a batch of reservations together: one after the other in arrival order, against
the stock the batch locked, each as it would be decided alone at that point.

This is the whole rule of group commit: a batch is equivalent to its reservations run one
by one in arrival order, so each keeps every promise of a lone reservation (all lines or
none, once per order, the first outcome answered again) while the batch touches each
product row once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

from services.inventory.domain.reservations import (
    Reservation,
    ReservationRequest,
    ReservationStatus,
    shortfalls_of,
)


@dataclass(frozen=True)
class BatchAnswer:
    """What one request of the batch is answered: a reservation (decided by this request,
    or found: an earlier one, or one decided by an earlier request of the same batch), or
    the products it names that do not exist (nothing recorded for it)."""

    reservation: Reservation | None
    decided_now: bool = False
    missing_products: tuple[int, ...] = ()


@dataclass
class BatchDecisions:
    """The answers in arrival order, and what must be written for them."""

    answers: list[BatchAnswer] = field(default_factory=list)
    # Claimed by this batch and now RESERVED (their lines to record) or REJECTED.
    reserved: list[Reservation] = field(default_factory=list)
    rejected: list[Reservation] = field(default_factory=list)
    # Claimed by this batch but never decided (each of its requests named an unknown
    # product): the claim is withdrawn, so nothing stays recorded for the order.
    withdrawn: list[str] = field(default_factory=list)
    # product id -> units the reserved take, one decrement per product.
    taken: dict[int, int] = field(default_factory=dict)


def decide_batch(
    requests: Sequence[ReservationRequest],
    claimed: Set[str],
    earlier: Mapping[str, Reservation],
    stock: Mapping[int, int],
) -> BatchDecisions:
    """Decide `requests` in order.

    `claimed`: the orders this batch claimed (no reservation existed); `earlier`: the
    reservations of the other orders; `stock`: the locked stock of every product the
    requests name that exists.
    """
    decisions = BatchDecisions()
    available = dict(stock)
    decided: dict[str, Reservation] = {}
    for request in requests:
        order_id = request.order_id
        if order_id in decided:
            decisions.answers.append(BatchAnswer(decided[order_id]))
            continue
        if order_id not in claimed:
            decisions.answers.append(BatchAnswer(earlier[order_id]))
            continue
        missing = tuple(pid for pid in request.product_ids if pid not in available)
        if missing:
            decisions.answers.append(BatchAnswer(None, missing_products=missing))
            continue
        shortfalls = shortfalls_of(request.lines, available)
        if shortfalls:
            reservation = Reservation(order_id, ReservationStatus.REJECTED, (), tuple(shortfalls))
            decisions.rejected.append(reservation)
        else:
            reservation = Reservation(order_id, ReservationStatus.RESERVED, request.lines)
            decisions.reserved.append(reservation)
            for line in request.lines:
                available[line.product_id] -= line.quantity
                decisions.taken[line.product_id] = (
                    decisions.taken.get(line.product_id, 0) + line.quantity
                )
        decided[order_id] = reservation
        decisions.answers.append(BatchAnswer(reservation, decided_now=True))
    decisions.withdrawn = sorted(order_id for order_id in claimed if order_id not in decided)
    return decisions
