"""A batch of reservations is decided as if each ran alone, one after the other in arrival
order: the domain rule (decide_batch), and the service layer's group commit on fakes."""

from __future__ import annotations

import asyncio

import pytest

from services.inventory.domain.errors import (
    InsufficientStock,
    ProductNotFound,
    ReservationAlreadyReleased,
)
from services.inventory.domain.reservation_batches import BatchAnswer, decide_batch
from services.inventory.domain.reservations import (
    Reservation,
    ReservationLine,
    ReservationRequest,
    ReservationStatus,
    Shortfall,
    reservation_request,
)
from services.inventory.service_layer.reservations import (
    ReserveOutcome,
    release_stock,
    reserve_stock,
)
from tests.inventory.unit.fakes import FakeInventory

pytestmark = pytest.mark.unit

A, B, UNKNOWN = 1, 2, 404


def request(order_id: str, items: dict[int, int]) -> ReservationRequest:
    return reservation_request(order_id, list(items.items()))


def reserved(order_id: str, items: dict[int, int]) -> Reservation:
    return Reservation(order_id, ReservationStatus.RESERVED, request(order_id, items).lines)


def test_reservations_are_decided_in_arrival_order_each_all_or_nothing() -> None:
    requests = [
        request("o-1", {A: 3}),
        request("o-2", {A: 1, B: 3}),  # B is short: nothing of it taken, A included
        request("o-3", {A: 2, B: 2}),
        request("o-4", {A: 1}),  # A has 0 left after o-1 and o-3
    ]
    decisions = decide_batch(requests, {"o-1", "o-2", "o-3", "o-4"}, {}, {A: 5, B: 2})
    rejected_2 = Reservation("o-2", ReservationStatus.REJECTED, (), (Shortfall(B, 3, 2),))
    rejected_4 = Reservation("o-4", ReservationStatus.REJECTED, (), (Shortfall(A, 1, 0),))
    assert decisions.answers == [
        BatchAnswer(reserved("o-1", {A: 3}), decided_now=True),
        BatchAnswer(rejected_2, decided_now=True),
        BatchAnswer(reserved("o-3", {A: 2, B: 2}), decided_now=True),
        BatchAnswer(rejected_4, decided_now=True),
    ]
    assert decisions.reserved == [reserved("o-1", {A: 3}), reserved("o-3", {A: 2, B: 2})]
    assert decisions.rejected == [rejected_2, rejected_4]
    assert decisions.taken == {A: 5, B: 2}
    assert decisions.withdrawn == []


def test_a_repeat_in_the_batch_is_answered_the_first_outcome_whatever_it_asks() -> None:
    requests = [
        request("o-1", {A: 2}),
        request("o-1", {A: 1, B: 1}),
        request("o-2", {B: 9}),
        request("o-2", {B: 1}),
    ]
    decisions = decide_batch(requests, {"o-1", "o-2"}, {}, {A: 5, B: 2})
    rejected = Reservation("o-2", ReservationStatus.REJECTED, (), (Shortfall(B, 9, 2),))
    assert decisions.answers == [
        BatchAnswer(reserved("o-1", {A: 2}), decided_now=True),
        BatchAnswer(reserved("o-1", {A: 2})),
        BatchAnswer(rejected, decided_now=True),
        BatchAnswer(rejected),
    ]
    assert decisions.taken == {A: 2}


def test_orders_claimed_before_the_batch_are_answered_their_earlier_outcome() -> None:
    earlier = {
        "o-old": reserved("o-old", {A: 1}),
        "o-gone": Reservation("o-gone", ReservationStatus.RELEASED),
    }
    requests = [request("o-old", {A: 4}), request("o-gone", {A: 1}), request("o-new", {A: 1})]
    decisions = decide_batch(requests, {"o-new"}, earlier, {A: 1})
    assert decisions.answers == [
        BatchAnswer(earlier["o-old"]),
        BatchAnswer(earlier["o-gone"]),
        BatchAnswer(reserved("o-new", {A: 1}), decided_now=True),
    ]
    assert decisions.taken == {A: 1}


def test_an_unknown_product_records_nothing_unless_a_later_request_decides_the_order() -> None:
    requests = [
        request("o-1", {A: 1, UNKNOWN: 1}),
        request("o-2", {UNKNOWN: 1}),
        request("o-1", {A: 1}),
    ]
    decisions = decide_batch(requests, {"o-1", "o-2"}, {}, {A: 1})
    assert decisions.answers == [
        BatchAnswer(None, missing_products=(UNKNOWN,)),
        BatchAnswer(None, missing_products=(UNKNOWN,)),
        BatchAnswer(reserved("o-1", {A: 1}), decided_now=True),
    ]
    assert decisions.withdrawn == ["o-2"]
    assert decisions.taken == {A: 1}


def answer_of(outcome: object) -> tuple[object, ...]:
    if isinstance(outcome, ReserveOutcome):
        return ("reserved", outcome.reservation.lines, outcome.newly_reserved)
    return (type(outcome).__name__, getattr(outcome, "message", str(outcome)))


def test_concurrent_calls_are_one_batch_answered_as_if_run_one_by_one() -> None:
    def scenario(concurrently: bool) -> tuple[list[tuple[object, ...]], list[str], list[int]]:
        inventory = FakeInventory()
        a, b = inventory.add_product(stock=4), inventory.add_product(stock=1)
        asyncio.run(reserve_stock(request("o-old", {a: 1}), inventory.deps))
        asyncio.run(release_stock("o-gone", inventory.deps))
        requests = [
            request("o-1", {a: 2}),
            request("o-2", {b: 1, UNKNOWN: 1}),
            request("o-1", {a: 1}),
            request("o-3", {a: 1, b: 2}),
            request("o-old", {a: 1}),
            request("o-gone", {a: 1}),
            request("o-2", {b: 1}),
            request("o-4", {a: 1, b: 1}),
            request("o-5", {a: 1}),
        ]
        inventory.uow.transactions.clear()

        async def reserve_all() -> list[object]:
            calls = [reserve_stock(r, inventory.deps) for r in requests]
            if concurrently:
                return list(await asyncio.gather(*calls, return_exceptions=True))
            return [(await asyncio.gather(call, return_exceptions=True))[0] for call in calls]

        answers = asyncio.run(reserve_all())
        return (
            [answer_of(answer) for answer in answers],
            inventory.uow.transactions,
            [inventory.stock_of(a), inventory.stock_of(b)],
        )

    one_by_one, alone, stock_alone = scenario(concurrently=False)
    batched, batch, stock_batched = scenario(concurrently=True)
    assert batched == one_by_one
    assert "reserve_stock_batch" not in alone
    assert batch == ["reserve_stock_batch"]
    assert stock_batched == stock_alone == [0, 0]
    assert [answer[0] for answer in batched] == [
        "reserved",
        ProductNotFound.__name__,
        "reserved",
        InsufficientStock.__name__,
        "reserved",
        ReservationAlreadyReleased.__name__,
        "reserved",
        InsufficientStock.__name__,
        "reserved",
    ]
    # The repeat of o-1 in the batch: its first outcome, not what it asked for.
    assert batched[2] == ("reserved", (ReservationLine(1, 2),), False)
    assert batched[3] == (
        InsufficientStock.__name__,
        "not enough stock for order o-3: product 2 (requested 2, available 1); "
        "nothing was reserved",
    )
