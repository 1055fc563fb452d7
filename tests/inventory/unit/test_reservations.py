"""Reserving stock for an order (all lines or none, once) and releasing it (once), on fakes.

Most rules are checked for three sizes of order: one line, as many lines as one
reservation statement takes, and one more, which takes the line-by-line transaction.
"""

from __future__ import annotations

import asyncio

import pytest

from services.common.errors import Reason
from services.inventory.domain.errors import (
    InsufficientStock,
    ProductNotFound,
    ReservationAlreadyReleased,
)
from services.inventory.domain.reservations import (
    ReservationLine,
    ReservationStatus,
    Shortfall,
    reservation_request,
)
from services.inventory.service_layer.ports import MAX_LINES_IN_ONE_STATEMENT
from services.inventory.service_layer.reservations import (
    ReleaseOutcome,
    ReserveOutcome,
    release_stock,
    reserve_stock,
)
from tests.inventory.unit.fakes import FakeInventory

pytestmark = pytest.mark.unit


@pytest.fixture
def inventory() -> FakeInventory:
    return FakeInventory()


@pytest.fixture(
    params=[1, MAX_LINES_IN_ONE_STATEMENT, MAX_LINES_IN_ONE_STATEMENT + 1],
    ids=["one line", "one statement", "line by line"],
)
def products(request: pytest.FixtureRequest, inventory: FakeInventory) -> list[int]:
    """Product ids of an order's lines, each with 10 in stock."""
    return [inventory.add_product(stock=10) for _ in range(request.param)]


def reserve(inventory: FakeInventory, order_id: str, items: dict[int, int]) -> ReserveOutcome:
    request = reservation_request(order_id, list(items.items()))
    return asyncio.run(reserve_stock(request, inventory.deps))


def release(inventory: FakeInventory, order_id: str) -> ReleaseOutcome:
    return asyncio.run(release_stock(order_id, inventory.deps))


def stocks(inventory: FakeInventory, product_ids: list[int]) -> list[int]:
    return [inventory.stock_of(pid) for pid in product_ids]


def test_a_reservation_takes_every_line_and_reports_it(inventory, products):
    outcome = reserve(inventory, "o-1", {pid: 3 for pid in reversed(products)})
    assert outcome.newly_reserved
    assert outcome.reservation.lines == tuple(ReservationLine(pid, 3) for pid in products)
    assert stocks(inventory, products) == [7] * len(products)


def test_a_repeat_returns_the_first_outcome_and_takes_nothing_more(inventory, products):
    first = reserve(inventory, "o-1", {pid: 3 for pid in products})
    again = reserve(inventory, "o-1", {pid: 5 for pid in products})
    assert (first.newly_reserved, again.newly_reserved) == (True, False)
    assert again.reservation.lines == first.reservation.lines
    assert stocks(inventory, products) == [7] * len(products)


def test_one_short_line_reserves_nothing_and_names_the_short_product(inventory, products):
    short = inventory.add_product(stock=1)
    with pytest.raises(InsufficientStock) as caught:
        reserve(inventory, "o-1", {**{pid: 2 for pid in products}, short: 2})
    assert caught.value.shortfalls == [Shortfall(short, 2, 1)]
    assert [dict(i.metadata) for i in caught.value.infos] == [
        {"product_id": str(short), "requested": "2", "available": "1"}
    ]
    assert {i.reason for i in caught.value.infos} == {Reason.INSUFFICIENT_STOCK}
    assert stocks(inventory, [*products, short]) == [10] * len(products) + [1]


def test_every_short_product_is_named(inventory, products):
    with pytest.raises(InsufficientStock) as caught:
        reserve(inventory, "o-1", {pid: 11 for pid in products})
    assert caught.value.shortfalls == [Shortfall(pid, 11, 10) for pid in products]


def test_a_rejection_is_recorded_so_a_repeat_after_restock_is_still_rejected(inventory, products):
    items = {pid: 11 for pid in products}
    with pytest.raises(InsufficientStock) as first:
        reserve(inventory, "o-1", items)
    for pid in products:
        inventory.db.write_stock(pid, 100)
    with pytest.raises(InsufficientStock) as again:
        reserve(inventory, "o-1", items)
    assert again.value.message == first.value.message
    assert stocks(inventory, products) == [100] * len(products)


def test_an_unknown_product_records_nothing_so_a_corrected_request_goes_through(
    inventory, products
):
    with pytest.raises(ProductNotFound) as caught:
        reserve(inventory, "o-1", {**{pid: 1 for pid in products}, 404: 1})
    assert caught.value.product_ids == [404]
    assert inventory.db.reservations == {}
    assert stocks(inventory, products) == [10] * len(products)
    assert reserve(inventory, "o-1", {pid: 1 for pid in products}).newly_reserved


def test_release_gives_the_stock_back_once(inventory, products):
    reserve(inventory, "o-1", {pid: 4 for pid in products})
    first, second = release(inventory, "o-1"), release(inventory, "o-1")
    assert first.released == tuple(ReservationLine(pid, 4) for pid in products)
    assert second.released == ()
    assert stocks(inventory, products) == [10] * len(products)


def test_a_reservation_after_its_release_is_refused(inventory, products):
    reserve(inventory, "o-1", {pid: 4 for pid in products})
    release(inventory, "o-1")
    with pytest.raises(ReservationAlreadyReleased) as caught:
        reserve(inventory, "o-1", {pid: 4 for pid in products})
    assert caught.value.message == "reservation for order o-1 was already released"
    assert [(i.reason, dict(i.metadata)) for i in caught.value.infos] == [
        (Reason.RESERVATION_RELEASED, {"order_id": "o-1"})
    ]
    assert stocks(inventory, products) == [10] * len(products)


def test_a_release_before_any_reservation_bars_a_later_one(inventory, products):
    outcome = release(inventory, "o-1")
    assert (outcome.released, outcome.barred_reservation) == ((), True)
    with pytest.raises(ReservationAlreadyReleased):
        reserve(inventory, "o-1", {pid: 1 for pid in products})
    assert stocks(inventory, products) == [10] * len(products)


def test_releasing_a_rejected_order_gives_nothing_back(inventory, products):
    with pytest.raises(InsufficientStock):
        reserve(inventory, "o-1", {pid: 11 for pid in products})
    outcome = release(inventory, "o-1")
    assert (outcome.released, outcome.barred_reservation) == ((), False)
    assert stocks(inventory, products) == [10] * len(products)
    assert inventory.db.reservations["o-1"].status is ReservationStatus.REJECTED


def test_orders_compete_for_stock_without_ever_taking_it_below_zero(inventory):
    product = inventory.add_product(stock=5)
    outcomes = []
    for number in range(4):
        try:
            outcomes.append(reserve(inventory, f"o-{number}", {product: 2}).newly_reserved)
        except InsufficientStock as short:
            outcomes.append(short.shortfalls)
    assert outcomes == [True, True, [Shortfall(product, 2, 1)], [Shortfall(product, 2, 1)]]
    assert inventory.stock_of(product) == 1


def test_a_reservation_that_fits_one_statement_needs_no_transaction(inventory):
    products = [inventory.add_product(stock=10) for _ in range(MAX_LINES_IN_ONE_STATEMENT)]
    reserve(inventory, "o-1", {pid: 1 for pid in products})
    assert (inventory.uow.autocommits, inventory.uow.transactions) == (["reserve_stock"], [])


def test_a_repeat_reads_the_first_outcome_in_one_transaction(inventory):
    product = inventory.add_product(stock=10)
    reserve(inventory, "o-1", {product: 1})
    reserve(inventory, "o-1", {product: 1})
    assert inventory.uow.transactions == ["get_reservation"]


def test_a_reservation_too_large_for_one_statement_is_one_transaction(inventory):
    products = [inventory.add_product(stock=10) for _ in range(MAX_LINES_IN_ONE_STATEMENT + 1)]
    reserve(inventory, "o-1", {pid: 1 for pid in products})
    assert (inventory.uow.autocommits, inventory.uow.transactions) == ([], ["reserve_stock"])
