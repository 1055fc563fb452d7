"""In-memory stand-ins for the inventory's ports (fakes, not mocks).

They keep the promises the service layer relies on from PostgreSQL: a transaction is all
or nothing, reserve_lines is all or nothing on its own, a claim is once per order, and
the constraints of the schema (stock never below 0, a line's product exists, one line per
product and order) hold, raising ConstraintViolated as the database would.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from services.common.pagination import PageTokenSource
from services.inventory.domain.products import NewProduct, Product
from services.inventory.domain.reservation_batches import BatchDecisions
from services.inventory.domain.reservations import (
    Reservation,
    ReservationLine,
    ReservationStatus,
    Shortfall,
)
from services.inventory.service_layer.dependencies import InventoryServiceDeps
from services.inventory.service_layer.ports import MAX_LINES_IN_ONE_STATEMENT, Repositories
from services.inventory.service_layer.reservations import reservation_batches

T = TypeVar("T")


class ConstraintViolated(Exception):
    """What PostgreSQL raises for a broken CHECK, foreign key or primary key."""


@dataclass
class StoredReservation:
    status: ReservationStatus
    # product_id -> quantity
    lines: dict[int, int] = field(default_factory=dict)
    shortfalls: tuple[Shortfall, ...] = ()


@dataclass
class FakeDatabase:
    products: dict[int, Product] = field(default_factory=dict)
    reservations: dict[str, StoredReservation] = field(default_factory=dict)
    last_product_id: int = 0
    clock: datetime = datetime(2030, 1, 1, tzinfo=UTC)

    def write_stock(self, product_id: int, stock_level: int) -> None:
        if stock_level < 0:
            raise ConstraintViolated("ck_products_stock_level_not_negative")
        self.products[product_id] = replace(self.products[product_id], stock_level=stock_level)

    def add_line(self, order_id: str, line: ReservationLine) -> None:
        lines = self.reservations[order_id].lines
        if line.product_id not in self.products:
            raise ConstraintViolated("fk_reservation_items_product_id")
        if line.product_id in lines:
            raise ConstraintViolated("pk_reservation_items")
        lines[line.product_id] = line.quantity


class FakeProductRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    async def insert_product(self, new: NewProduct) -> Product | None:
        if any(p.sku == new.sku for p in self.db.products.values()):
            return None
        self.db.last_product_id += 1
        self.db.clock += timedelta(milliseconds=1)
        product = Product(
            self.db.last_product_id, new.sku, new.name, new.description, new.price,
            new.initial_stock, self.db.clock,
        )
        self.db.products[product.product_id] = product
        return product

    async def get_products(self, product_ids: Sequence[int]) -> dict[int, Product]:
        return {pid: self.db.products[pid] for pid in product_ids if pid in self.db.products}

    async def list_products_after(self, after_id: int, limit: int) -> list[Product]:
        return [self.db.products[pid] for pid in sorted(self.db.products) if pid > after_id][:limit]

    async def stock_levels(self, product_ids: Sequence[int]) -> dict[int, int]:
        return {pid: p.stock_level for pid, p in (await self.get_products(product_ids)).items()}

    async def lock_stock_levels(self, product_ids: Sequence[int]) -> dict[int, int]:
        return await self.stock_levels(sorted(product_ids))

    async def set_stock(self, product_id: int, stock_level: int) -> bool:
        if product_id not in self.db.products:
            return False
        self.db.write_stock(product_id, stock_level)
        return True

    async def adjust_stock_within(self, product_id: int, delta: int, ceiling: int) -> int | None:
        product = self.db.products.get(product_id)
        if product is None:
            return None
        new_level = product.stock_level + delta
        if new_level < 0 or (delta > 0 and new_level > ceiling):
            return None
        self.db.write_stock(product_id, new_level)
        return new_level

    async def take_stock(self, product_id: int, quantity: int) -> bool:
        product = self.db.products.get(product_id)
        if product is None or product.stock_level < quantity:
            return False
        self.db.write_stock(product_id, product.stock_level - quantity)
        return True

    async def return_stock(self, product_id: int, quantity: int) -> None:
        if product_id in self.db.products:
            self.db.write_stock(product_id, self.db.products[product_id].stock_level + quantity)


class FakeReservationRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    async def reserve_lines(self, order_id: str, lines: Sequence[ReservationLine]) -> bool | None:
        assert len(lines) <= MAX_LINES_IN_ONE_STATEMENT, "more lines than one statement takes"
        assert list(lines) == sorted(lines), "lines come in ascending product id"
        if order_id in self.db.reservations:
            return None
        products = self.db.products
        if any(
            line.product_id not in products or products[line.product_id].stock_level < line.quantity
            for line in lines
        ):
            return False
        await self.claim_order_with_lines(order_id, lines)
        for line in lines:
            self.db.write_stock(line.product_id, products[line.product_id].stock_level - line.quantity)
        return True

    async def claim_order(self, order_id: str, status: ReservationStatus) -> bool:
        if order_id in self.db.reservations:
            return False
        self.db.reservations[order_id] = StoredReservation(status)
        return True

    async def claim_order_with_lines(
        self, order_id: str, lines: Sequence[ReservationLine]
    ) -> set[int] | None:
        if not await self.claim_order(order_id, ReservationStatus.RESERVED):
            return None
        existing = [line for line in lines if line.product_id in self.db.products]
        for line in existing:
            self.db.add_line(order_id, line)
        return {line.product_id for line in existing}

    async def claim_orders_locking_stock(
        self, order_ids: Sequence[str], product_ids: Sequence[int]
    ) -> tuple[set[str], dict[int, int]]:
        assert list(order_ids) == sorted(set(order_ids)), "order ids ascending and distinct"
        claimed = {
            order_id
            for order_id in order_ids
            if await self.claim_order(order_id, ReservationStatus.RESERVED)
        }
        products = self.db.products
        return claimed, {pid: products[pid].stock_level for pid in product_ids if pid in products}

    async def get_reservations(self, order_ids: Sequence[str]) -> dict[str, Reservation]:
        found = {order_id: await self.get_reservation(order_id) for order_id in order_ids}
        return {order_id: r for order_id, r in found.items() if r is not None}

    async def record_batch(self, decisions: BatchDecisions) -> None:
        for reservation in decisions.reserved:
            await self.add_lines(reservation.order_id, reservation.lines)
        for reservation in decisions.rejected:
            await self.mark_rejected(reservation.order_id, reservation.shortfalls)
        for order_id in decisions.withdrawn:
            del self.db.reservations[order_id]
        products = self.db.products
        for product_id, quantity in decisions.taken.items():
            self.db.write_stock(product_id, products[product_id].stock_level - quantity)

    async def get_reservation(
        self, order_id: str, *, for_update: bool = False
    ) -> Reservation | None:
        stored = self.db.reservations.get(order_id)
        if stored is None:
            return None
        lines = tuple(ReservationLine(pid, qty) for pid, qty in sorted(stored.lines.items()))
        return Reservation(order_id, stored.status, lines, stored.shortfalls)

    async def add_lines(self, order_id: str, lines: Sequence[ReservationLine]) -> None:
        for line in lines:
            self.db.add_line(order_id, line)

    async def mark_rejected(self, order_id: str, shortfalls: Sequence[Shortfall]) -> None:
        stored = self.db.reservations[order_id]
        stored.status = ReservationStatus.REJECTED
        stored.shortfalls = tuple(shortfalls)

    async def mark_released(self, order_id: str) -> None:
        self.db.reservations[order_id].status = ReservationStatus.RELEASED


@dataclass(frozen=True)
class FakeRepositories:
    products: FakeProductRepository
    reservations: FakeReservationRepository


class FakeUnitOfWork:
    """Runs work against the fake database and notes how: a failed transaction leaves no
    trace; in autocommit each repository call stands on its own, as each statement would."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.transactions: list[str] = []
        self.autocommits: list[str] = []

    def _repositories(self) -> FakeRepositories:
        return FakeRepositories(FakeProductRepository(self.db), FakeReservationRepository(self.db))

    async def transaction(self, work: Callable[[Repositories], Awaitable[T]], *, name: str) -> T:
        self.transactions.append(name)
        snapshot = copy.deepcopy(self.db)
        try:
            return await work(self._repositories())
        except BaseException:
            self.db.__dict__.update(snapshot.__dict__)
            raise

    async def hot_transaction(
        self, work: Callable[[Repositories], Awaitable[T]], *, name: str
    ) -> T:
        return await self.transaction(work, name=name)

    async def autocommit(self, work: Callable[[Repositories], Awaitable[T]], *, name: str) -> T:
        self.autocommits.append(name)
        return await work(self._repositories())


@dataclass
class FakeInventory:
    """A service layer's worth of fakes, and shortcuts to arrange and inspect its data."""

    db: FakeDatabase = field(default_factory=FakeDatabase)

    def __post_init__(self) -> None:
        self.uow = FakeUnitOfWork(self.db)
        self.deps = InventoryServiceDeps(
            uow=self.uow,
            page_tokens=PageTokenSource.fixed(b"fake page token secret"),
            reservation_batches=reservation_batches(self.uow),
        )

    def add_product(self, stock: int = 0, price: str = "9.99") -> int:
        self.db.last_product_id += 1
        product_id = self.db.last_product_id
        self.db.products[product_id] = Product(
            product_id, f"sku-{product_id}", "Widget", "", Decimal(price), stock, self.db.clock
        )
        return product_id

    def stock_of(self, product_id: int) -> int:
        return self.db.products[product_id].stock_level
