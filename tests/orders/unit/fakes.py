"""In-memory stand-ins for the service layer's ports (fakes, not mocks)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from services.common.lifecycle.status import NON_TERMINAL, OrderStatus
from services.common.pagination import PageTokenSource
from services.orders.domain.callers import Caller, CallerRole
from services.orders.domain.errors import InventoryUnavailable
from services.orders.domain.model import (
    HistoryEntry,
    NewOrder,
    Order,
    OrderFilters,
    PageKey,
    RequestKey,
    StaleOrder,
    StatusChange,
    StoredRequest,
)
from services.orders.service_layer.dependencies import OrderServiceDeps
from services.orders.service_layer.ports import OrderRepository, PriceLookup

T = TypeVar("T")

CUSTOMER = Caller("ada", CallerRole.CUSTOMER)


@dataclass
class StoredRow:
    order: Order
    request_id: str | None
    fingerprint: str | None
    stale_claims: int = 0
    release_pending: bool = False


@dataclass
class FakeDatabase:
    rows: dict[uuid.UUID, StoredRow] = field(default_factory=dict)
    history: dict[uuid.UUID, list[HistoryEntry]] = field(default_factory=dict)
    last_entry_id: int = 0
    clock: datetime = datetime(2030, 1, 1, tzinfo=UTC)
    notified: list[uuid.UUID] = field(default_factory=list)

    def tick(self) -> datetime:
        self.clock += timedelta(milliseconds=1)
        return self.clock


class FakeRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    async def stored_requests(self, keys: Collection[RequestKey]) -> dict[RequestKey, StoredRequest]:
        found = {}
        for row in self.db.rows.values():
            key = _key_of(row)
            if key is not None and key in keys:
                found[key] = StoredRequest(row.order, row.fingerprint or "")
        return found

    async def add_new_orders(
        self, new_orders: Sequence[NewOrder], first_step_due_in_s: float, actor: str
    ) -> dict[uuid.UUID, Order]:
        now = self.db.tick()
        due = now + timedelta(seconds=first_step_due_in_s)
        taken = {key for row in self.db.rows.values() if (key := _key_of(row)) is not None}
        inserted: dict[uuid.UUID, Order] = {}
        for new in new_orders:
            if new.request_key is not None:
                if new.request_key in taken:
                    continue
                taken.add(new.request_key)
            order = Order(
                new.order_id, new.customer_name, OrderStatus.PENDING, new.lines,
                "order received", now, now, due, new.customer_id,
            )
            self.db.rows[new.order_id] = StoredRow(order, new.request_id, new.request_fingerprint)
            self._record(new.order_id, None, OrderStatus.PENDING, now, "order received", due, actor)
            inserted[new.order_id] = order
        return inserted

    def _visible(self, order_id: uuid.UUID, visible_to: str | None) -> StoredRow | None:
        row = self.db.rows.get(order_id)
        if row is None or (visible_to is not None and row.order.customer_id != visible_to):
            return None
        return row

    async def get(self, order_id: uuid.UUID, visible_to: str | None = None) -> Order | None:
        row = self._visible(order_id, visible_to)
        return row.order if row else None

    async def page(self, filters: OrderFilters, after: PageKey | None, limit: int) -> list[Order]:
        matching = [
            row.order for row in self.db.rows.values()
            if (filters.status is None or row.order.status is filters.status)
            and (filters.customer_name is None or row.order.customer_name == filters.customer_name)
            and (filters.customer_id is None or row.order.customer_id == filters.customer_id)
        ]
        matching.sort(key=lambda o: (o.create_time, o.order_id), reverse=True)
        if after is not None:
            matching = [
                o for o in matching if (o.create_time, o.order_id) < (after.create_time, after.order_id)
            ]
        return matching[:limit]

    async def history(
        self, order_id: uuid.UUID, after_entry_id: int = 0, visible_to: str | None = None
    ) -> list[HistoryEntry]:
        if self._visible(order_id, visible_to) is None:
            return []
        return [e for e in self.db.history.get(order_id, []) if e.entry_id > after_entry_id]

    async def get_with_last_entry_id(
        self, order_id: uuid.UUID, visible_to: str | None = None
    ) -> tuple[Order, int] | None:
        row = self._visible(order_id, visible_to)
        if row is None:
            return None
        return row.order, self.db.history[order_id][-1].entry_id

    async def change_status(
        self,
        order_id: uuid.UUID,
        from_statuses: Collection[OrderStatus],
        to_status: OrderStatus,
        note: str,
        next_step_due_in_s: float | None,
        actor: str,
        release_stock: bool = False,
        visible_to: str | None = None,
    ) -> StatusChange | None:
        row = self._visible(order_id, visible_to)
        if row is None or row.order.status not in from_statuses:
            return None
        now = self.db.tick()
        due = None if next_step_due_in_s is None else now + timedelta(seconds=next_step_due_in_s)
        previous = row.order.status
        row.order = replace(
            row.order, status=to_status, status_note=note, update_time=now, next_step_due_time=due
        )
        row.stale_claims = 0
        row.release_pending = row.release_pending or release_stock
        self._record(order_id, previous, to_status, now, note, due, actor)
        self.db.notified.append(order_id)
        return StatusChange(row.order, previous)

    async def current_status(
        self, order_id: uuid.UUID, visible_to: str | None = None
    ) -> OrderStatus | None:
        row = self._visible(order_id, visible_to)
        return row.order.status if row else None

    async def claim_stale(self, limit: int, stale_after_s: float, lease_s: float) -> list[StaleOrder]:
        now = self.db.tick()
        overdue = sorted(
            (
                row for row in self.db.rows.values()
                if row.order.status in NON_TERMINAL
                and row.order.next_step_due_time is not None
                and row.order.next_step_due_time + timedelta(seconds=stale_after_s) < now
            ),
            key=lambda row: row.order.next_step_due_time or now,
        )[:limit]
        for row in overdue:
            row.order = replace(row.order, next_step_due_time=now + timedelta(seconds=lease_s))
            row.stale_claims += 1
        return [StaleOrder(row.order, row.stale_claims) for row in overdue]

    async def orders_awaiting_stock_release(self, limit: int) -> list[uuid.UUID]:
        return [i for i, row in self.db.rows.items() if row.release_pending][:limit]

    async def mark_stock_released(self, order_id: uuid.UUID) -> None:
        self.db.rows[order_id].release_pending = False

    async def count_by_status(self) -> dict[OrderStatus, int]:
        counts = dict.fromkeys(OrderStatus, 0)
        for row in self.db.rows.values():
            counts[row.order.status] += 1
        return counts

    def _record(
        self, order_id: uuid.UUID, from_status: OrderStatus | None, to_status: OrderStatus,
        time: datetime, note: str, due: datetime | None, actor: str,
    ) -> None:
        self.db.last_entry_id += 1
        self.db.history.setdefault(order_id, []).append(
            HistoryEntry(self.db.last_entry_id, from_status, to_status, time, note, due, actor)
        )


def _key_of(row: StoredRow) -> RequestKey | None:
    return None if row.request_id is None else RequestKey(row.order.customer_id, row.request_id)


class FakeUnitOfWork:
    """Runs work against the fake database; a failed transaction leaves no trace."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.transactions = 0

    async def transaction(
        self, work: Callable[[OrderRepository], Awaitable[T]], *, name: str
    ) -> T:
        self.transactions += 1
        snapshot = copy.deepcopy(self.db)
        try:
            return await work(FakeRepository(self.db))
        except BaseException:
            self.db.__dict__.update(snapshot.__dict__)
            raise

    async def autocommit(
        self, work: Callable[[OrderRepository], Awaitable[T]], *, name: str
    ) -> T:
        # Each fake repository call is one statement: what it did stays even if work fails.
        self.transactions += 1
        return await work(FakeRepository(self.db))


@dataclass
class FakeCatalog:
    prices: dict[int, Decimal] = field(default_factory=dict)
    available: bool = True
    lookups: list[set[int]] = field(default_factory=list)

    async def lookup_prices(self, product_ids: Collection[int]) -> PriceLookup:
        self.lookups.append(set(product_ids))
        if not self.available:
            raise InventoryUnavailable()
        return PriceLookup(
            {pid: self.prices[pid] for pid in product_ids if pid in self.prices},
            frozenset(pid for pid in product_ids if pid not in self.prices),
        )


@dataclass
class FakeReleaser:
    available: bool = True
    released: list[uuid.UUID] = field(default_factory=list)

    async def release_stock(self, order_id: uuid.UUID) -> None:
        if not self.available:
            raise InventoryUnavailable()
        self.released.append(order_id)


@dataclass
class FakePublisher:
    published: list[uuid.UUID] = field(default_factory=list)

    async def publish_first_steps(self, order_ids: Sequence[uuid.UUID]) -> None:
        self.published.extend(order_ids)


class FakeSignal:
    def __init__(self) -> None:
        import asyncio

        self.event = asyncio.Event()
        self.stopping = False

    async def wait(self) -> bool:
        await self.event.wait()
        self.event.clear()
        return not self.stopping


@dataclass
class FakeChangeFeed:
    signals: dict[uuid.UUID, list[FakeSignal]] = field(default_factory=dict)

    @asynccontextmanager
    async def subscribe(self, order_id: uuid.UUID) -> AsyncIterator[FakeSignal]:
        signal = FakeSignal()
        self.signals.setdefault(order_id, []).append(signal)
        try:
            yield signal
        finally:
            self.signals[order_id].remove(signal)

    def changed(self, order_id: uuid.UUID) -> None:
        for signal in self.signals.get(order_id, []):
            signal.event.set()


@dataclass
class FakeSystem:
    db: FakeDatabase = field(default_factory=FakeDatabase)
    catalog: FakeCatalog = field(default_factory=FakeCatalog)
    releaser: FakeReleaser = field(default_factory=FakeReleaser)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    changes: FakeChangeFeed = field(default_factory=FakeChangeFeed)
    release_retries_requested: int = 0
    bulk_max_items: int = 10_000
    bulk_batch_size: int = 200

    def __post_init__(self) -> None:
        self.uow = FakeUnitOfWork(self.db)

    @property
    def deps(self) -> OrderServiceDeps:
        return OrderServiceDeps(
            uow=self.uow,
            catalog=self.catalog,
            releaser=self.releaser,
            publisher=self.publisher,
            changes=self.changes,
            retry_stock_releases=self._count_retry,
            first_step_due_in_s=1.0,
            bulk_max_items=self.bulk_max_items,
            page_tokens=PageTokenSource.fixed(b"fake page token secret"),
            bulk_batch_size=self.bulk_batch_size,
        )

    def _count_retry(self) -> None:
        self.release_retries_requested += 1
