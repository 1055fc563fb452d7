"""What the service layer needs from storage, as protocols.

The adapters implement them on PostgreSQL; the unit tests implement them in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from services.inventory.domain.products import NewProduct, Product
from services.inventory.domain.reservation_batches import BatchDecisions
from services.inventory.domain.reservations import (
    Reservation,
    ReservationLine,
    ReservationStatus,
    Shortfall,
)

T = TypeVar("T")

# The most lines ReservationRepository.reserve_lines takes in its one statement (a CTE per
# line); a larger reservation takes the multi-statement path.
MAX_LINES_IN_ONE_STATEMENT = 16


class ProductRepository(Protocol):
    async def insert_product(self, new: NewProduct) -> Product | None:
        """The created product, or None when the sku is taken (nothing is written then)."""

    async def get_products(self, product_ids: Sequence[int]) -> dict[int, Product]:
        """Those of `product_ids` that exist, by id."""

    async def list_products_after(self, after_id: int, limit: int) -> list[Product]:
        """Products with id > after_id in id order: a keyset page that inserts cannot shift."""

    async def stock_levels(self, product_ids: Sequence[int]) -> dict[int, int]:
        """Current stock of those of `product_ids` that exist."""

    async def lock_stock_levels(self, product_ids: Sequence[int]) -> dict[int, int]:
        """Like stock_levels, and no other writer changes these levels until the transaction
        ends. Locks are taken in ascending id, the order of every other writer."""

    async def set_stock(self, product_id: int, stock_level: int) -> bool:
        """False when the product does not exist."""

    async def adjust_stock_within(self, product_id: int, delta: int, ceiling: int) -> int | None:
        """Add `delta` unless the result would leave [0, ceiling]: the new level, or None
        (nothing changed). The ceiling only stops increases, so a level already above it
        can still be lowered. The bounds hold against concurrent writers."""

    async def take_stock(self, product_id: int, quantity: int) -> bool:
        """Decrement by `quantity` if that much is there; False (and no change) otherwise.
        Safe under any concurrency: it can neither oversell nor lose an update."""

    async def return_stock(self, product_id: int, quantity: int) -> None: ...


class ReservationRepository(Protocol):
    async def reserve_lines(self, order_id: str, lines: Sequence[ReservationLine]) -> bool | None:
        """Claim the order as RESERVED, record its lines and take their stock, all or nothing.

        `lines` in ascending product id, at most MAX_LINES_IN_ONE_STATEMENT. True when
        reserved; None when the order was already claimed; False when some stock did not
        cover its line or a product does not exist. Only True writes anything. One
        statement: all or nothing even outside a transaction, and a refusal leaves a
        surrounding transaction usable.
        """

    async def claim_order(self, order_id: str, status: ReservationStatus) -> bool:
        """Create the order's reservation with `status` and no lines; False when it existed.
        A concurrent claim of the same order waits until this transaction ends, then backs
        off: this is the per-order lock."""

    async def claim_order_with_lines(
        self, order_id: str, lines: Sequence[ReservationLine]
    ) -> set[int] | None:
        """Claim the order as RESERVED and record its lines, as claim_order and add_lines do.

        None when the order was already claimed (nothing written); otherwise the ids of the
        products that exist, each of which got its line. Stock is not touched, and no
        product is locked against stock writers.
        """

    async def claim_orders_locking_stock(
        self, order_ids: Sequence[str], product_ids: Sequence[int]
    ) -> tuple[set[str], dict[int, int]]:
        """claim_order for each of `order_ids` (ascending, distinct) as RESERVED, in that
        order, then ProductRepository.lock_stock_levels of `product_ids`, in one statement:
        the ids claimed now (the others existed), and the locked stock by product id."""

    async def get_reservation(
        self, order_id: str, *, for_update: bool = False
    ) -> Reservation | None:
        """The order's reservation, lines in ascending product id. `for_update`: no other
        transaction changes it until this one ends."""

    async def get_reservations(self, order_ids: Sequence[str]) -> dict[str, Reservation]:
        """get_reservation of each of `order_ids` that exists, by order id, in one statement."""

    async def add_lines(self, order_id: str, lines: Sequence[ReservationLine]) -> None: ...

    async def mark_rejected(self, order_id: str, shortfalls: Sequence[Shortfall]) -> None: ...

    async def mark_released(self, order_id: str) -> None: ...

    async def record_batch(self, decisions: BatchDecisions) -> None:
        """Write what a batch decided for the orders it claimed while holding the locks of
        claim_orders_locking_stock: the lines of the reserved and their stock taken,
        one decrement per product, the shortfalls of the rejected, and no trace of the
        withdrawn. All in one statement; a decrement the stock does not cover fails it."""


class Repositories(Protocol):
    """The repositories of one unit of work, all on its transaction (or its autocommit)."""

    @property
    def products(self) -> ProductRepository: ...

    @property
    def reservations(self) -> ReservationRepository: ...


class UnitOfWork(Protocol):
    async def transaction(self, work: Callable[[Repositories], Awaitable[T]], *, name: str) -> T:
        """Run `work` in one transaction that commits when it returns and rolls back when it
        raises. `work` may run more than once (deadlock retry), so it must have no effect
        outside the transaction: log after this returns."""

    async def hot_transaction(
        self, work: Callable[[Repositories], Awaitable[T]], *, name: str
    ) -> T:
        """`transaction` for work made only of the repositories' batch statements
        (claim_orders_locking_stock, get_reservations, record_batch): run straight on the
        driver, without the per-statement cost of the general path. A statement that fails
        fails the whole transaction."""

    async def autocommit(self, work: Callable[[Repositories], Awaitable[T]], *, name: str) -> T:
        """Run `work` with each statement committing on its own: no BEGIN and COMMIT round
        trips, no lock held across a round trip. Only for work that reads, or whose one
        write is a single statement (see the repository methods). Rerun on deadlock like
        `transaction`."""


class ReservationMetrics(Protocol):
    def reservation_decided(self, outcome: str) -> None:
        """One ReserveStock answered: "reserved" (stock held now), "short" (refused now for
        want of stock) or "repeat" (the order's earlier decision returned)."""


class NoReservationMetrics:
    """Metrics off (INVENTORY_METRICS_ADDR empty): nothing is counted."""

    def reservation_decided(self, outcome: str) -> None:
        pass
