"""The repositories and unit of work keep the promises of service_layer/ports.py, on
PostgreSQL and in the fakes alike: each scenario runs against both, so the unit tests on
fakes say something about the real service."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from services.common.database.engines import service_pools
from services.inventory.adapters.reservation_repository import BatchDecrementMissed
from services.inventory.adapters.unit_of_work import SqlUnitOfWork
from services.inventory.domain.products import NewProduct
from services.inventory.domain.reservation_batches import decide_batch
from services.inventory.domain.reservations import (
    Reservation,
    ReservationLine,
    ReservationRequest,
    ReservationStatus,
    Shortfall,
)
from services.inventory.service_layer.ports import Repositories, UnitOfWork
from tests.inventory.unit.fakes import ConstraintViolated, FakeDatabase, FakeUnitOfWork

pytestmark = pytest.mark.integration

Scenario = Callable[[UnitOfWork], Awaitable[None]]


@pytest.fixture(params=["fake", "postgres"])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    """Runs a scenario on a fresh event loop against one implementation of the ports."""

    async def on_postgres(scenario: Scenario) -> None:
        engine, statements = service_pools(request.getfixturevalue("database_url"), 4)
        try:
            await scenario(SqlUnitOfWork(engine, statements))
        finally:
            await statements.close()
            await engine.dispose()

    async def on_fakes(scenario: Scenario) -> None:
        await scenario(FakeUnitOfWork(FakeDatabase()))

    chosen = on_postgres if request.param == "postgres" else on_fakes
    return lambda scenario: asyncio.run(asyncio.wait_for(chosen(scenario), timeout=60))


async def new_product(uow: UnitOfWork, stock: int) -> int:
    new = NewProduct(f"sku-{uuid.uuid4()}", "Widget", "", Decimal("1.00"), stock)
    product = await uow.transaction(lambda repos: repos.products.insert_product(new), name="test")
    assert product is not None
    return product.product_id


async def stock_of(uow: UnitOfWork, product_id: int) -> int:
    levels = await uow.autocommit(lambda repos: repos.products.stock_levels([product_id]), name="test")
    return levels[product_id]


def lines(*pairs: tuple[int, int]) -> list[ReservationLine]:
    return sorted(ReservationLine(pid, qty) for pid, qty in pairs)


UNKNOWN_PRODUCT = 2**62 + 17


def test_reserve_lines_is_all_or_nothing_and_once_per_order(run) -> None:
    async def scenario(uow: UnitOfWork) -> None:
        a, b = await new_product(uow, 5), await new_product(uow, 1)
        order = str(uuid.uuid4())

        async def reserve(*pairs: tuple[int, int]) -> bool | None:
            return await uow.autocommit(
                lambda repos: repos.reservations.reserve_lines(order, lines(*pairs)), name="test"
            )

        assert await reserve((a, 2), (b, 2)) is False
        assert await reserve((a, 2), (UNKNOWN_PRODUCT, 1)) is False
        assert (await stock_of(uow, a), await stock_of(uow, b)) == (5, 1)
        assert await reserve((a, 2), (b, 1)) is True
        assert await reserve((a, 1)) is None
        assert (await stock_of(uow, a), await stock_of(uow, b)) == (3, 0)
        reservation = await uow.autocommit(
            lambda repos: repos.reservations.get_reservation(order), name="test"
        )
        assert reservation is not None
        assert (reservation.status, reservation.lines) == (
            ReservationStatus.RESERVED, tuple(lines((a, 2), (b, 1)))
        )

    run(scenario)


def test_a_refused_reserve_lines_leaves_a_transaction_usable(run) -> None:
    async def scenario(uow: UnitOfWork) -> None:
        product = await new_product(uow, 1)
        order = str(uuid.uuid4())

        async def refused_then_claimed(repos: Repositories) -> tuple[bool | None, bool]:
            refused = await repos.reservations.reserve_lines(order, lines((product, 2)))
            return refused, await repos.reservations.claim_order(order, ReservationStatus.RELEASED)

        assert await uow.transaction(refused_then_claimed, name="test") == (False, True)
        assert await stock_of(uow, product) == 1

    run(scenario)


def test_a_failed_transaction_leaves_no_trace(run) -> None:
    async def scenario(uow: UnitOfWork) -> None:
        product = await new_product(uow, 3)
        order = str(uuid.uuid4())

        async def take_then_fail(repos: Repositories) -> None:
            await repos.reservations.claim_order_with_lines(order, lines((product, 2)))
            assert await repos.products.take_stock(product, 2)
            raise LookupError("changed my mind")

        with pytest.raises(LookupError):
            await uow.transaction(take_then_fail, name="test")
        assert await stock_of(uow, product) == 3
        assert await uow.autocommit(
            lambda repos: repos.reservations.get_reservation(order), name="test"
        ) is None

    run(scenario)


def test_claims_are_once_per_order_and_lines_only_for_products_that_exist(run) -> None:
    async def scenario(uow: UnitOfWork) -> None:
        product = await new_product(uow, 3)
        order, other = str(uuid.uuid4()), str(uuid.uuid4())

        async def claims(repos: Repositories) -> tuple[object, ...]:
            return (
                await repos.reservations.claim_order_with_lines(
                    order, lines((product, 1), (UNKNOWN_PRODUCT, 1))
                ),
                await repos.reservations.claim_order_with_lines(order, lines((product, 1))),
                await repos.reservations.claim_order(order, ReservationStatus.RELEASED),
                await repos.reservations.claim_order(other, ReservationStatus.RELEASED),
            )

        assert await uow.transaction(claims, name="test") == ({product}, None, False, True)
        assert await stock_of(uow, product) == 3

    run(scenario)


def test_stock_changes_respect_their_bounds(run) -> None:
    async def scenario(uow: UnitOfWork) -> None:
        product = await new_product(uow, 5)

        async def changes(repos: Repositories) -> tuple[object, ...]:
            p = repos.products
            return (
                await p.take_stock(product, 6),
                await p.take_stock(product, 5),
                await p.adjust_stock_within(product, -1, 10),
                await p.adjust_stock_within(product, 11, 10),
                await p.adjust_stock_within(product, 10, 10),
                await p.lock_stock_levels([UNKNOWN_PRODUCT, product]),
                await p.set_stock(UNKNOWN_PRODUCT, 1),
                await p.adjust_stock_within(UNKNOWN_PRODUCT, 1, 10),
            )

        assert await uow.transaction(changes, name="test") == (
            False, True, None, None, 10, {product: 10}, False, None
        )

    run(scenario)


def test_stock_never_goes_below_zero_even_when_asked_directly(run) -> None:
    async def scenario(uow: UnitOfWork) -> None:
        product = await new_product(uow, 1)
        with pytest.raises((ConstraintViolated, IntegrityError)):
            await uow.transaction(lambda repos: repos.products.set_stock(product, -1), name="test")
        assert await stock_of(uow, product) == 1

    run(scenario)


def test_a_taken_sku_inserts_nothing(run) -> None:
    async def scenario(uow: UnitOfWork) -> None:
        new = NewProduct(f"sku-{uuid.uuid4()}", "Widget", "", Decimal("1.00"), 1)
        first = await uow.transaction(lambda repos: repos.products.insert_product(new), name="test")
        second = await uow.transaction(lambda repos: repos.products.insert_product(new), name="test")
        assert first is not None and second is None
        after = await uow.autocommit(
            lambda repos: repos.products.list_products_after(first.product_id - 1, 2), name="test"
        )
        assert [p.sku for p in after].count(new.sku) == 1

    run(scenario)


def test_a_batch_claims_locks_and_records_as_one_hot_transaction(run) -> None:
    async def scenario(uow: UnitOfWork) -> None:
        a, b = await new_product(uow, 5), await new_product(uow, 1)
        earlier, fits, short, unknown = sorted(str(uuid.uuid4()) for _ in range(4))
        assert await uow.autocommit(
            lambda repos: repos.reservations.reserve_lines(earlier, lines((a, 2))), name="test"
        )
        requests = [
            ReservationRequest(fits, tuple(lines((a, 3)))),
            ReservationRequest(short, tuple(lines((b, 2)))),
            ReservationRequest(unknown, tuple(lines((a, 1), (UNKNOWN_PRODUCT, 1)))),
            ReservationRequest(earlier, tuple(lines((b, 1)))),
        ]

        async def batch(repos: Repositories) -> tuple[object, ...]:
            claimed, stock = await repos.reservations.claim_orders_locking_stock(
                sorted(r.order_id for r in requests), [a, b, UNKNOWN_PRODUCT]
            )
            found = await repos.reservations.get_reservations([earlier, str(uuid.uuid4())])
            await repos.reservations.record_batch(decide_batch(requests, claimed, found, stock))
            return claimed, stock, found

        claimed, stock, found = await uow.hot_transaction(batch, name="test")
        assert (claimed, stock) == ({fits, short, unknown}, {a: 3, b: 1})
        assert found == {earlier: Reservation(earlier, ReservationStatus.RESERVED, tuple(lines((a, 2))))}
        assert (await stock_of(uow, a), await stock_of(uow, b)) == (0, 1)
        recorded = await uow.autocommit(
            lambda repos: repos.reservations.get_reservations([fits, short, unknown]), name="test"
        )
        assert recorded == {
            fits: Reservation(fits, ReservationStatus.RESERVED, tuple(lines((a, 3)))),
            short: Reservation(short, ReservationStatus.REJECTED, (), (Shortfall(b, 2, 1),)),
        }

    run(scenario)


def test_a_batch_decrement_the_stock_does_not_cover_rolls_the_whole_batch_back(run) -> None:
    async def scenario(uow: UnitOfWork) -> None:
        product = await new_product(uow, 2)
        order = str(uuid.uuid4())

        async def overselling_batch(repos: Repositories) -> None:
            claimed, _ = await repos.reservations.claim_orders_locking_stock([order], [product])
            # A decision made against a wrong stock level: the decrement refuses it.
            wrong = decide_batch(
                [ReservationRequest(order, tuple(lines((product, 3))))], claimed, {}, {product: 3}
            )
            await repos.reservations.record_batch(wrong)

        with pytest.raises((BatchDecrementMissed, ConstraintViolated)):
            await uow.hot_transaction(overselling_batch, name="test")
        assert await stock_of(uow, product) == 2
        assert await uow.autocommit(
            lambda repos: repos.reservations.get_reservation(order), name="test"
        ) is None

    run(scenario)
