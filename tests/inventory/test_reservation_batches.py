"""Group commit on PostgreSQL: batches of concurrent reservations are decided as the same
reservations one by one, never oversell, never deadlock, and fail as a whole.

Most tests run the service layer in this process, where which calls share a batch is
certain: calls started together queue behind the first and are one batch. Several
`inventory_process`es on one database are several server processes, whose batches run
concurrently in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2

from services.common.auth.principal import Role
from services.common.database.engines import service_pools
from services.common.database.urls import libpq_url
from services.common.error_status import to_status_proto
from services.common.errors import DomainError
from services.common.pagination import PageTokenSource
from services.common.proto.fulfillment.inventory.v1 import reservation_service_pb2 as rpb
from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2_grpc as rpb_grpc,
)
from services.inventory.adapters.unit_of_work import SqlUnitOfWork
from services.inventory.domain.errors import InsufficientStock
from services.inventory.domain.products import NewProduct
from services.inventory.domain.reservations import ReservationRequest, reservation_request
from services.inventory.service_layer.dependencies import InventoryServiceDeps
from services.inventory.service_layer.ports import Repositories, UnitOfWork
from services.inventory.service_layer.reservations import (
    ReserveOutcome,
    release_stock,
    reservation_batches,
    reserve_stock,
)
from tests.auth import authorized_channel
from tests.inventory.calls import details_of, new_order_id, reserve_request, stock_of
from tests.inventory.calls import race as race_threads

pytestmark = pytest.mark.integration

T = TypeVar("T")
UNKNOWN = 2**62 + 19


class RecordingUnitOfWork:
    """The real unit of work, noting the name of every transaction it runs."""

    def __init__(self, inner: UnitOfWork) -> None:
        self._inner = inner
        self.transactions: list[str] = []

    async def transaction(self, work: Callable[[Repositories], Awaitable[T]], *, name: str) -> T:
        self.transactions.append(name)
        return await self._inner.transaction(work, name=name)

    async def hot_transaction(
        self, work: Callable[[Repositories], Awaitable[T]], *, name: str
    ) -> T:
        self.transactions.append(name)
        return await self._inner.hot_transaction(work, name=name)

    async def autocommit(self, work: Callable[[Repositories], Awaitable[T]], *, name: str) -> T:
        return await self._inner.autocommit(work, name=name)


@asynccontextmanager
async def inventory_process(
    database_url: str, connections: int = 4
) -> AsyncIterator[tuple[InventoryServiceDeps, RecordingUnitOfWork]]:
    """What one server process has: its pools, unit of work and group commit."""
    engine, statements = service_pools(database_url, connections)
    uow = RecordingUnitOfWork(SqlUnitOfWork(engine, statements))
    try:
        yield (
            InventoryServiceDeps(
                uow=uow,
                page_tokens=PageTokenSource.fixed(b"unused page token secret"),
                reservation_batches=reservation_batches(uow),
            ),
            uow,
        )
    finally:
        await statements.close()
        await engine.dispose()


def run(scenario: Awaitable[T], timeout: float = 60) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario, timeout)

    return asyncio.run(bounded())


async def new_product(deps: InventoryServiceDeps, stock: int) -> int:
    new = NewProduct(f"sku-{uuid.uuid4()}", "Widget", "", Decimal("1.00"), stock)
    product = await deps.uow.transaction(lambda r: r.products.insert_product(new), name="test")
    assert product is not None
    return product.product_id


def request(order_id: str, items: dict[int, int]) -> ReservationRequest:
    return reservation_request(order_id, list(items.items()))


async def answer(call: Awaitable[T]) -> T | BaseException:
    try:
        return await call
    except Exception as exc:
        return exc


@asynccontextmanager
async def database(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def stocks(conn: asyncpg.Connection, *product_ids: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT id, stock_level FROM inventory.products WHERE id = ANY($1)", list(product_ids)
    )
    levels = {row["id"]: row["stock_level"] for row in rows}
    return [levels[pid] for pid in product_ids]


async def units_held(conn: asyncpg.Connection, product_id: int) -> int:
    held: int = await conn.fetchval(
        "SELECT coalesce(sum(i.quantity), 0) FROM inventory.reservation_items AS i "
        "JOIN inventory.reservations AS r USING (order_id) "
        "WHERE i.product_id = $1 AND r.status = 'RESERVED'",
        product_id,
    )
    return held


async def recorded(conn: asyncpg.Connection, order_ids: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT order_id, status FROM inventory.reservations WHERE order_id = ANY($1)", order_ids
    )
    return {row["order_id"]: row["status"] for row in rows}


@asynccontextmanager
async def product_locked(conn: asyncpg.Connection, product_id: int) -> AsyncIterator[int]:
    """Hold the product's row lock (as a long stock write would) until the block ends;
    yields the holder's backend pid."""
    async with conn.transaction():
        await conn.execute("SELECT FROM inventory.products WHERE id = $1 FOR UPDATE", product_id)
        yield await conn.fetchval("SELECT pg_backend_pid()")


async def backend_blocked_by(conn: asyncpg.Connection, holder: int) -> int:
    """The pid of a backend waiting for a lock `holder` holds, once there is one (within
    10 s)."""
    async with asyncio.timeout(10):
        while True:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))", holder
            )
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.01)


def described(outcome: object, names: dict[str, str]) -> tuple[object, ...]:
    """The outcome as a caller sees it, with this run's ids replaced by `names`."""

    def named(text: str) -> str:
        text = re.sub(r"(?<=products/)\d+|(?<=product )\d+", lambda m: names.get(m[0], m[0]), text)
        return re.sub(r"(?<=order )\S+?(?=[: ]|$)", lambda m: names.get(m[0], m[0]), text)

    if isinstance(outcome, ReserveOutcome):
        lines = [(names[str(line.product_id)], line.quantity) for line in outcome.reservation.lines]
        return ("reserved", outcome.newly_reserved, lines)
    assert isinstance(outcome, DomainError), outcome
    status = to_status_proto(outcome)
    return (
        type(outcome).__name__,
        status.code,
        named(outcome.message),
        [named(v.subject) + " " + v.description for v in getattr(outcome, "violations", [])],
        [
            (
                info.reason.value,
                sorted(
                    (k, names.get(v, v) if k in ("product_id", "order_id") else v)
                    for k, v in info.metadata.items()
                ),
            )
            for info in outcome.infos
        ],
    )


def test_a_batch_answers_and_records_exactly_what_the_same_calls_one_by_one_do(
    database_url: str,
) -> None:
    async def scenario(concurrently: bool) -> tuple[list[tuple[object, ...]], list[int], list[str]]:
        async with inventory_process(database_url) as (deps, uow), database(database_url) as conn:
            a, b = await new_product(deps, 5), await new_product(deps, 2)
            tag = uuid.uuid4().hex[:8]
            names = {str(a): "A", str(b): "B", str(UNKNOWN): "X"}
            for name in ("o1", "o2", "o3", "o4", "o5", "o6", "old", "refused", "gone"):
                names[f"{tag}-{name}"] = name

            def order(name: str) -> str:
                return f"{tag}-{name}"

            # Outcomes decided before the batch: a repeat meets them.
            await reserve_stock(request(order("old"), {a: 1}), deps)
            assert isinstance(
                await answer(reserve_stock(request(order("refused"), {b: 3}), deps)),
                InsufficientStock,
            )
            await release_stock(order("gone"), deps)
            requests = [
                request(order("o1"), {a: 2}),
                request(order("o2"), {b: 1, a: 1}),
                request(order("o1"), {a: 4}),  # repeat in the batch: the first outcome
                request(order("o3"), {a: 2}),  # A has 1 left: short
                request(order("o4"), {b: 1, UNKNOWN: 1}),  # NOT_FOUND, nothing recorded
                request(order("o5"), {b: 2}),  # B has 1 left: short
                request(order("o4"), {b: 1}),  # decided now: B goes to 0
                request(order("old"), {a: 3}),  # repeat across batches
                request(order("refused"), {b: 1}),  # a recorded refusal stays one
                request(order("gone"), {a: 1}),  # released: refused
                request(order("o6"), {a: 1, b: 1}),  # B short, so A is not taken either
                request(order("o3"), {a: 1}),  # o3 was refused: the refusal again
            ]
            uow.transactions.clear()
            calls = [answer(reserve_stock(r, deps)) for r in requests]
            # Started together, the calls queue behind the first and are one batch.
            one_batch = asyncio.gather(*calls) if concurrently else None
            outcomes = list(await one_batch) if one_batch else [await call for call in calls]
            statuses = await recorded(conn, [order(n) for n in ("o1", "o2", "o3", "o4", "o5", "o6")])
            return (
                [described(outcome, names) for outcome in outcomes],
                [*await stocks(conn, a, b), await units_held(conn, a), await units_held(conn, b)],
                [statuses.get(order(n), "-") for n in ("o1", "o2", "o3", "o4", "o5", "o6")]
                + [",".join(uow.transactions)],
            )

    one_by_one, stock_alone, records_alone = run(scenario(concurrently=False))
    batched, stock_batched, records_batched = run(scenario(concurrently=True))
    assert batched == one_by_one
    assert stock_batched == stock_alone == [1, 0, 4, 2]
    assert records_batched[:6] == records_alone[:6] == [
        "RESERVED", "RESERVED", "REJECTED", "RESERVED", "REJECTED", "REJECTED"
    ]
    assert records_batched[6] == "reserve_stock_batch"
    assert "reserve_stock_batch" not in records_alone[6]
    assert [o[0] for o in batched] == [
        "reserved", "reserved", "reserved", "InsufficientStock", "ProductNotFound",
        "InsufficientStock", "reserved", "reserved", "InsufficientStock",
        "ReservationAlreadyReleased", "InsufficientStock", "InsufficientStock",
    ]
    assert batched[2] == ("reserved", False, [("A", 2)])
    assert batched[10][2:] == (
        "not enough stock for order o6: product B (requested 1, available 0); nothing was reserved",
        ["products/B requested 1, available 0"],
        [("INSUFFICIENT_STOCK", [("available", "0"), ("product_id", "B"), ("requested", "1")])],
    )


def test_a_hot_product_under_96_callers_in_three_processes_never_oversells(
    database_url: str,
) -> None:
    async def scenario() -> None:
        async with (
            inventory_process(database_url) as (one, one_uow),
            inventory_process(database_url) as (two, two_uow),
            inventory_process(database_url) as (three, three_uow),
            database(database_url) as conn,
        ):
            processes = [one, two, three]
            rng = random.Random(15)
            quantities = [rng.randint(1, 3) for _ in range(960)]
            initial = sum(quantities) * 9 // 10
            hot = await new_product(one, initial)
            reserved_units = 0
            lowest_seen = initial

            async def caller(number: int) -> None:
                nonlocal reserved_units
                for quantity in quantities[number::96]:
                    deps = processes[rng.randrange(3)]
                    outcome = await answer(reserve_stock(request(str(uuid.uuid4()), {hot: quantity}), deps))
                    if isinstance(outcome, ReserveOutcome):
                        reserved_units += quantity
                    else:
                        assert isinstance(outcome, InsufficientStock), outcome
                        [shortfall] = outcome.shortfalls
                        assert shortfall.available < quantity

            async def watch() -> None:
                nonlocal lowest_seen
                while True:
                    lowest_seen = min(lowest_seen, *await stocks(conn, hot))
                    await asyncio.sleep(0.005)

            watcher = asyncio.create_task(watch())
            await asyncio.gather(*(caller(n) for n in range(96)))
            watcher.cancel()
            [final] = await stocks(conn, hot)
            assert lowest_seen >= 0 and final >= 0
            assert initial - reserved_units == final
            assert initial == final + await units_held(conn, hot)
            assert final < 3  # demand exceeded the stock: it is (nearly) all taken
            batches = [u.transactions.count("reserve_stock_batch") for u in (one_uow, two_uow, three_uow)]
            assert all(batches), batches

    run(scenario(), timeout=100)


def test_orders_over_two_products_in_both_orders_across_processes_never_deadlock(
    database_url: str,
) -> None:
    async def scenario() -> None:
        async with (
            inventory_process(database_url) as (one, one_uow),
            inventory_process(database_url) as (two, two_uow),
            database(database_url) as conn,
        ):
            a, b = await new_product(one, 1000), await new_product(one, 1000)
            order_ids = [str(uuid.uuid4()) for _ in range(200)]

            async def reserve_twice_then_release(number: int) -> tuple[object, object, object]:
                # The same order from both processes, its items listed (A, B) by one and
                # (B, A) by the other, concurrently with everyone else's.
                order_id = order_ids[number]
                ab = reservation_request(order_id, [(a, 2), (b, 1)])
                ba = reservation_request(order_id, [(b, 1), (a, 2)])
                first, second = await asyncio.gather(
                    answer(reserve_stock(ab, (one, two)[number % 2])),
                    answer(reserve_stock(ba, (two, one)[number % 2])),
                )
                released = await answer(release_stock(order_id, (one, two)[number % 3 % 2]))
                return first, second, released

            outcomes = await asyncio.gather(*(reserve_twice_then_release(n) for n in range(200)))
            for first, second, released in outcomes:
                assert isinstance(first, ReserveOutcome), first
                assert isinstance(second, ReserveOutcome), second
                assert first.newly_reserved != second.newly_reserved
                assert first.reservation == second.reservation
                assert sorted((ln.product_id, ln.quantity) for ln in released.released) == sorted(  # type: ignore[union-attr]
                    [(a, 2), (b, 1)]
                )
            assert await stocks(conn, a, b) == [1000, 1000]
            assert "reserve_stock_batch" in one_uow.transactions
            assert "reserve_stock_batch" in two_uow.transactions

    run(scenario(), timeout=100)


def test_releases_racing_batched_reservations_never_leak_or_double_stock(
    database_url: str,
) -> None:
    async def scenario() -> None:
        async with (
            inventory_process(database_url) as (one, _),
            inventory_process(database_url) as (two, _),
            database(database_url) as conn,
        ):
            initial, quantity = 30, 3
            hot = await new_product(one, initial)
            order_ids = [str(uuid.uuid4()) for _ in range(120)]

            async def race(number: int) -> tuple[object, list[object]]:
                order_id = order_ids[number]
                reserved, *releases = await asyncio.gather(
                    answer(reserve_stock(request(order_id, {hot: quantity}), (one, two)[number % 2])),
                    answer(release_stock(order_id, two)),
                    answer(release_stock(order_id, one)),
                )
                return reserved, releases

            outcomes = await asyncio.gather(*(race(n) for n in range(120)))
            for order_id, (reserved, releases) in zip(order_ids, outcomes, strict=True):
                given_back = sum(
                    line.quantity for r in releases for line in r.released  # type: ignore[attr-defined]
                )
                if isinstance(reserved, ReserveOutcome):
                    assert given_back == quantity, order_id
                else:
                    assert type(reserved).__name__ in {
                        "ReservationAlreadyReleased", "InsufficientStock"
                    }, reserved
                    assert given_back == 0, order_id
            assert await stocks(conn, hot) == [initial]
            assert await units_held(conn, hot) == 0

    run(scenario(), timeout=100)


def test_a_batch_whose_transaction_fails_fails_every_caller_and_records_nothing(
    database_url: str,
) -> None:
    async def scenario() -> None:
        async with (
            inventory_process(database_url) as (deps, uow),
            database(database_url) as conn,
            database(database_url) as holder_conn,
        ):
            a, b = await new_product(deps, 50), await new_product(deps, 50)
            requests = [
                request(str(uuid.uuid4()), {a: 1 + n % 3} if n % 2 else {a: 1, b: 2})
                for n in range(12)
            ]
            uow.transactions.clear()
            async with product_locked(holder_conn, a) as holder:
                calls = [asyncio.create_task(answer(reserve_stock(r, deps))) for r in requests]
                # The batch has claimed its orders and waits for A's lock: its connection
                # is then lost, as when the server restarts.
                batch_backend = await backend_blocked_by(conn, holder)
                await conn.execute("SELECT pg_terminate_backend($1)", batch_backend)
                outcomes = await asyncio.gather(*calls)
            assert uow.transactions == ["reserve_stock_batch"]
            for outcome in outcomes:
                assert isinstance(outcome, Exception) and not isinstance(outcome, DomainError)
                assert to_status_proto(outcome).code == grpc.StatusCode.UNAVAILABLE.value[0]
            order_ids = [r.order_id for r in requests]
            assert await recorded(conn, order_ids) == {}
            assert await stocks(conn, a, b) == [50, 50]
            # Nothing half done: the same calls again reserve, once each.
            again = await asyncio.gather(*(reserve_stock(r, deps) for r in requests))
            assert all(outcome.newly_reserved for outcome in again)
            taken = sum(line.quantity for r in requests for line in r.lines if line.product_id == a)
            assert await stocks(conn, a) == [50 - taken]

    run(scenario())


def test_callers_giving_up_never_cancel_the_batch_of_the_others(database_url: str) -> None:
    async def scenario() -> None:
        async with (
            inventory_process(database_url) as (deps, _),
            database(database_url) as conn,
            database(database_url) as holder_conn,
        ):
            hot = await new_product(deps, 20)
            alone, *queued = [request(str(uuid.uuid4()), {hot: 2}) for _ in range(4)]
            async with product_locked(holder_conn, hot) as holder:
                in_flight = asyncio.create_task(reserve_stock(alone, deps))
                await backend_blocked_by(conn, holder)
                waiting = [asyncio.create_task(reserve_stock(r, deps)) for r in queued]
                while deps.reservation_batches.waiting < len(queued):  # noqa: ASYNC110
                    await asyncio.sleep(0)
                # One caller gives up while its batch is in flight, one before its batch
                # started (a deadline passing is the same cancellation).
                in_flight.cancel()
                waiting[1].cancel()
            outcomes = await asyncio.gather(in_flight, *waiting, return_exceptions=True)
            assert [isinstance(o, asyncio.CancelledError) for o in outcomes] == [
                True, False, True, False
            ]
            assert all(outcomes[n].newly_reserved for n in (1, 3))  # type: ignore[union-attr]
            records = await recorded(conn, [alone.order_id, *[r.order_id for r in queued]])
            # The batch in flight completed, its caller's reservation included; the call
            # that gave up before its batch was left out of it.
            assert records == {
                alone.order_id: "RESERVED",
                queued[0].order_id: "RESERVED",
                queued[2].order_id: "RESERVED",
            }
            assert await stocks(conn, hot) == [20 - 3 * 2]
            repeat = await reserve_stock(alone, deps)
            assert not repeat.newly_reserved

    run(scenario())


def test_many_callers_on_one_order_across_processes_reserve_it_once(database_url: str) -> None:
    async def scenario() -> list[Any]:
        async with (
            inventory_process(database_url) as (one, _),
            inventory_process(database_url) as (two, _),
            database(database_url) as conn,
        ):
            hot = await new_product(one, 100)
            order_id = str(uuid.uuid4())
            calls = [
                answer(reserve_stock(request(order_id, {hot: 1 + n % 4}), (one, two)[n % 2]))
                for n in range(64)
            ]
            outcomes = await asyncio.gather(*calls)
            assert all(isinstance(o, ReserveOutcome) for o in outcomes), outcomes
            assert sum(o.newly_reserved for o in outcomes) == 1  # type: ignore[union-attr]
            assert len({o.reservation for o in outcomes}) == 1  # type: ignore[union-attr]
            [kept] = {o.reservation.lines for o in outcomes}  # type: ignore[union-attr]
            assert await stocks(conn, hot) == [100 - kept[0].quantity]
            return outcomes

    run(scenario())


def test_the_server_batches_64_concurrent_callers_and_answers_each_its_own_shortfall(
    inventory, inventory_server, settings, make_product, database_url: str
) -> None:
    rng = random.Random(64)
    quantities = [rng.randint(1, 3) for _ in range(64)]
    initial = sum(quantities) * 3 // 4
    hot = make_product(stock=initial).product_id
    order_ids = [new_order_id() for _ in quantities]
    clients = [authorized_channel(inventory_server.addr, settings, Role.SERVICE) for _ in quantities]

    def reserve(number: int) -> Callable[[int], rpb.ReserveStockResponse]:
        stub = rpb_grpc.ReservationServiceStub(clients[number])
        request = reserve_request(order_ids[number], {hot: quantities[number]})
        return lambda _round: stub.ReserveStock(request, timeout=60)

    try:
        [outcomes] = race_threads(1, [reserve(n) for n in range(64)])
    finally:
        for client in clients:
            client.close()

    reserved_units = 0
    for quantity, outcome in zip(quantities, outcomes, strict=True):
        if isinstance(outcome, rpb.ReserveStockResponse):
            assert outcome.newly_reserved
            reserved_units += quantity
            continue
        assert outcome.code() is grpc.StatusCode.FAILED_PRECONDITION, outcome.details()
        [info] = details_of(outcome, error_details_pb2.ErrorInfo)
        assert info.reason == "INSUFFICIENT_STOCK"
        assert info.metadata["product_id"] == str(hot)
        assert info.metadata["requested"] == str(quantity)
        assert int(info.metadata["available"]) < quantity
    final = stock_of(inventory, hot)

    async def held_and_batch_sizes() -> tuple[int, list[int]]:
        async with database(database_url) as conn:
            # A batch's rows carry its transaction's start time; lone reservations each
            # have their own.
            sizes = await conn.fetch(
                "SELECT count(*) AS size FROM inventory.reservations "
                "WHERE order_id = ANY($1) GROUP BY create_time",
                order_ids,
            )
            return await units_held(conn, hot), [row["size"] for row in sizes]

    held, batch_sizes = run(held_and_batch_sizes())
    assert final >= 0 and initial - reserved_units == final == initial - held
    assert sum(batch_sizes) == 64
    assert max(batch_sizes) > 1, batch_sizes
