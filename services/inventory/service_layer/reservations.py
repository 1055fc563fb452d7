"""Reserving stock for an order (all items or none, once) and releasing it (once).

Lock order, everywhere: the order's reservation row first, then product rows in ascending
id. Two transactions can then never each hold a row the other waits for, whatever order
callers list the items in; a deadlock that still happens (e.g. with a manual session) is
retried by the unit of work, never shown to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from services.common.logs import log_event
from services.inventory.domain.errors import (
    InsufficientStock,
    ProductNotFound,
    ReservationAlreadyReleased,
)
from services.inventory.domain.reservation_batches import (
    BatchAnswer,
    BatchDecisions,
    decide_batch,
)
from services.inventory.domain.reservations import (
    Reservation,
    ReservationLine,
    ReservationRequest,
    ReservationStatus,
    shortfalls_of,
)
from services.inventory.service_layer.coalescing import Coalescer
from services.inventory.service_layer.ports import (
    MAX_LINES_IN_ONE_STATEMENT,
    Repositories,
    UnitOfWork,
)

if TYPE_CHECKING:
    from services.inventory.service_layer.dependencies import InventoryServiceDeps

logger = logging.getLogger("fulfillment.inventory")

# A batch's caps: a larger one would hold the product locks longer than it saves.
MAX_RESERVATIONS_IN_A_BATCH = 256
MAX_LINES_IN_A_BATCH = 4096


@dataclass(frozen=True)
class ReserveOutcome:
    reservation: Reservation
    # True when this call decided the outcome; False when it found an earlier one.
    decided_now: bool

    @property
    def newly_reserved(self) -> bool:
        return self.decided_now and self.reservation.status is ReservationStatus.RESERVED


@dataclass(frozen=True)
class ReleaseOutcome:
    order_id: str
    released: tuple[ReservationLine, ...]
    # True when the release came before any reservation and now bars one.
    barred_reservation: bool = False


async def reserve_stock(request: ReservationRequest, deps: InventoryServiceDeps) -> ReserveOutcome:
    """Hold every line's stock for the order, or nothing; a repeat returns the first outcome.

    Raises InsufficientStock (recorded, so repeats get the same answer), ProductNotFound
    (nothing recorded) or ReservationAlreadyReleased. Concurrent calls are decided in
    batches (reservation_batches), each exactly as it would be alone.
    """
    outcome = await deps.reservation_batches.call(request)
    reservation = outcome.reservation
    _count(outcome, deps)
    if reservation.status is ReservationStatus.REJECTED:
        if outcome.decided_now:
            log_event(
                logger, "reservation_rejected", order_id=reservation.order_id,
                shortfalls=[asdict(s) for s in reservation.shortfalls],
            )
        raise InsufficientStock(reservation.order_id, reservation.shortfalls)
    if reservation.status is ReservationStatus.RELEASED:
        raise ReservationAlreadyReleased(reservation.order_id)
    if outcome.decided_now:
        log_event(
            logger, "stock_reserved", order_id=reservation.order_id,
            items=[asdict(line) for line in reservation.lines],
        )
    return outcome


def _count(outcome: ReserveOutcome, deps: InventoryServiceDeps) -> None:
    """After the decision committed. A reserve that meets a released order's tombstone is
    none of the three (the caller gets FAILED_PRECONDITION, counted with the RPCs)."""
    status = outcome.reservation.status
    if not outcome.decided_now:
        if status is not ReservationStatus.RELEASED:
            deps.metrics.reservation_decided("repeat")
    elif status is ReservationStatus.RESERVED:
        deps.metrics.reservation_decided("reserved")
    elif status is ReservationStatus.REJECTED:
        deps.metrics.reservation_decided("short")


async def release_stock(order_id: str, deps: InventoryServiceDeps) -> ReleaseOutcome:
    """Give back what the order holds, once; otherwise a no-op that bars a later reserve."""
    outcome = await deps.uow.transaction(
        lambda repos: _release(repos, order_id), name="release_stock"
    )
    if outcome.released:
        log_event(
            logger, "stock_released", order_id=order_id,
            items=[asdict(line) for line in outcome.released],
        )
    elif outcome.barred_reservation:
        log_event(logger, "reservation_barred", order_id=order_id)
    return outcome


def reservation_batches(uow: UnitOfWork) -> Coalescer[ReservationRequest, ReserveOutcome]:
    """The process's group commit for ReserveStock: a call that finds no batch in flight
    goes alone (the one-statement reservation); calls that arrive meanwhile are decided
    together in one transaction (_decide_batch), one after the other in arrival order."""

    async def reserve_batch(
        requests: Sequence[ReservationRequest],
    ) -> list[ReserveOutcome | Exception]:
        if len(requests) == 1:
            try:
                return [await _reserve_alone(uow, requests[0])]
            except ProductNotFound as missing:
                return [missing]
        decisions = await uow.hot_transaction(
            lambda repos: _decide_batch(repos, requests), name="reserve_stock_batch"
        )
        return [_outcome_of(answer) for answer in decisions.answers]

    return Coalescer(
        reserve_batch,
        max_calls=MAX_RESERVATIONS_IN_A_BATCH,
        max_weight=MAX_LINES_IN_A_BATCH,
        weight=lambda request: len(request.lines),
    )


async def _reserve_alone(uow: UnitOfWork, request: ReservationRequest) -> ReserveOutcome:
    outcome = await _reserve_common_case(uow, request)
    if outcome is None:
        outcome = await uow.transaction(
            lambda repos: _reserve_or_reject(repos, request), name="reserve_or_reject_stock"
        )
    return outcome


async def _decide_batch(
    repos: Repositories, requests: Sequence[ReservationRequest]
) -> BatchDecisions:
    """Claim the batch's orders (ascending order id) and lock the stock of the products
    they name (ascending id, once per product) in one statement, read the earlier outcome
    of the orders claimed before, decide in arrival order, and write it all in one
    statement: with BEGIN and COMMIT four round trips (five with repeats), whatever the
    batch's size.

    Safe as the lone path is: the lock order is the same (reservation rows, then products
    by ascending id), the claims are the per-order locks (a concurrent claim of one of
    these orders waits for this transaction, then finds its outcome), and the locked
    stock cannot change before COMMIT, so deciding from it in Python is deciding from what
    the decrements will meet. Any failure rolls back the whole batch.
    """
    order_ids = sorted({request.order_id for request in requests})
    product_ids = sorted({pid for request in requests for pid in request.product_ids})
    claimed, stock = await repos.reservations.claim_orders_locking_stock(order_ids, product_ids)
    found_claimed = [order_id for order_id in order_ids if order_id not in claimed]
    earlier = await repos.reservations.get_reservations(found_claimed) if found_claimed else {}
    if len(earlier) != len(found_claimed):
        raise RuntimeError("an order found claimed has no reservation row")
    decisions = decide_batch(requests, claimed, earlier, stock)
    if claimed:
        await repos.reservations.record_batch(decisions)
    return decisions


def _outcome_of(answer: BatchAnswer) -> ReserveOutcome | Exception:
    if answer.reservation is None:
        return ProductNotFound(answer.missing_products)
    return ReserveOutcome(answer.reservation, answer.decided_now)


async def _reserve_common_case(
    uow: UnitOfWork, request: ReservationRequest
) -> ReserveOutcome | None:
    """Reserve assuming the stock covers every line; None (nothing written) when it did not."""
    order_id = request.order_id
    if len(request.lines) > MAX_LINES_IN_ONE_STATEMENT:
        try:
            return await uow.transaction(lambda repos: _reserve(repos, request), name="reserve_stock")
        except _StockShort:
            return None
    # One statement in autocommit: one round trip, and the product rows are locked only
    # inside PostgreSQL, from the decrements to the commit that ends the statement.
    reserved = await uow.autocommit(
        lambda repos: repos.reservations.reserve_lines(order_id, request.lines),
        name="reserve_stock",
    )
    if reserved is None:
        return await uow.transaction(
            lambda repos: _earlier_outcome(repos, order_id), name="get_reservation"
        )
    if not reserved:
        return None
    return ReserveOutcome(
        Reservation(order_id, ReservationStatus.RESERVED, request.lines), decided_now=True
    )


class _StockShort(Exception):
    """A decrement missed: the transaction is rolled back, so nothing of it remains."""


async def _reserve(repos: Repositories, request: ReservationRequest) -> ReserveOutcome:
    """More lines than one statement takes, ordered so the product rows are locked as
    briefly as a transaction allows.

    The order's row and its lines are written first (taking no product lock a stock writer
    waits for), then each line is decremented in ascending product id, and the last
    decrement is the last statement before COMMIT. A miss raises _StockShort, which rolls
    back the whole transaction (claim, lines and the decrements already done), so no
    savepoint is needed; reserve_stock then decides in _reserve_or_reject.
    """
    order_id = request.order_id
    existing = await repos.reservations.claim_order_with_lines(order_id, request.lines)
    if existing is None:
        return await _earlier_outcome(repos, order_id)
    missing = [product_id for product_id in request.product_ids if product_id not in existing]
    if missing:
        # Raising rolls back the whole transaction: no reservation row is left behind.
        raise ProductNotFound(missing)
    for line in request.lines:
        if not await repos.products.take_stock(line.product_id, line.quantity):
            raise _StockShort
    return ReserveOutcome(
        Reservation(order_id, ReservationStatus.RESERVED, request.lines), decided_now=True
    )


async def _reserve_or_reject(repos: Repositories, request: ReservationRequest) -> ReserveOutcome:
    """After a miss: lock the products, then reject with the shortfalls they show, or
    reserve if stock came back in between (the locks guarantee the decrements succeed)."""
    order_id = request.order_id
    if not await repos.reservations.claim_order(order_id, ReservationStatus.RESERVED):
        return await _earlier_outcome(repos, order_id)
    available = await repos.products.lock_stock_levels(request.product_ids)
    missing = [product_id for product_id in request.product_ids if product_id not in available]
    if missing:
        raise ProductNotFound(missing)
    shortfalls = shortfalls_of(request.lines, available)
    if shortfalls:
        await repos.reservations.mark_rejected(order_id, shortfalls)
        rejected = Reservation(order_id, ReservationStatus.REJECTED, (), tuple(shortfalls))
        return ReserveOutcome(rejected, decided_now=True)
    await repos.reservations.add_lines(order_id, request.lines)
    for line in request.lines:
        taken = await repos.products.take_stock(line.product_id, line.quantity)
        assert taken, "a locked row that covers its line must admit the decrement"
    return ReserveOutcome(
        Reservation(order_id, ReservationStatus.RESERVED, request.lines), decided_now=True
    )


async def _earlier_outcome(repos: Repositories, order_id: str) -> ReserveOutcome:
    earlier = await repos.reservations.get_reservation(order_id)
    assert earlier is not None, "a claimed order keeps its row"
    return ReserveOutcome(earlier, decided_now=False)


async def _release(repos: Repositories, order_id: str) -> ReleaseOutcome:
    # Claiming with RELEASED leaves a tombstone when nothing was reserved yet, so a
    # reserve that arrives late for this order is refused instead of holding stock that
    # nobody will ever release.
    if await repos.reservations.claim_order(order_id, ReservationStatus.RELEASED):
        return ReleaseOutcome(order_id, (), barred_reservation=True)
    # FOR UPDATE serialises concurrent releases of one order: the second one waits, then
    # sees RELEASED and gives nothing back.
    reservation = await repos.reservations.get_reservation(order_id, for_update=True)
    if reservation is None or reservation.status is not ReservationStatus.RESERVED:
        return ReleaseOutcome(order_id, ())
    for line in reservation.lines:
        await repos.products.return_stock(line.product_id, line.quantity)
    await repos.reservations.mark_released(order_id)
    return ReleaseOutcome(order_id, reservation.lines)
