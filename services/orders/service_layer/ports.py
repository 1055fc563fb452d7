"""What the service layer needs from the outside world, as protocols.

The adapters implement these against PostgreSQL, the inventory service and Celery; the
unit tests implement them in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, TypeVar

from services.common.lifecycle.status import OrderStatus
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

T = TypeVar("T")


class OrderRepository(Protocol):
    async def stored_requests(self, keys: Collection[RequestKey]) -> dict[RequestKey, StoredRequest]:
        """The orders holding any of `keys` (customer_id, request_id), by key."""

    async def add_new_orders(
        self, new_orders: Sequence[NewOrder], first_step_due_in_s: float, actor: str
    ) -> dict[uuid.UUID, Order]:
        """Store orders with their items and first history row (caused by `actor`); returns
        the orders stored.

        An order whose request key another order already holds is skipped, not an error.
        One statement: all or nothing even outside a transaction.
        """

    async def get(self, order_id: uuid.UUID, visible_to: str | None = None) -> Order | None:
        """The order; with `visible_to`, only if it is that customer's (otherwise None, just
        as for an order that does not exist)."""

    async def page(
        self, filters: OrderFilters, after: PageKey | None, limit: int
    ) -> list[Order]:
        """Orders newest first, strictly after `after` in that order."""

    async def history(
        self, order_id: uuid.UUID, after_entry_id: int = 0, visible_to: str | None = None
    ) -> list[HistoryEntry]:
        """Transitions oldest first, only those after `after_entry_id`; none for another
        customer's order when `visible_to` is given."""

    async def get_with_last_entry_id(
        self, order_id: uuid.UUID, visible_to: str | None = None
    ) -> tuple[Order, int] | None:
        """The order and the id of its latest history entry, read at one instant."""

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
        """Compare-and-set: move the order to `to_status` only if it is in `from_statuses`
        (and, with `visible_to`, that customer's), writing its history row (caused by
        `actor`) and announcing the change; the change says which status it left. None when
        the order was not in one of `from_statuses` (or does not exist, or is not visible).
        From a single status and for anyone it is one statement: all or nothing even
        outside a transaction."""

    async def current_status(
        self, order_id: uuid.UUID, visible_to: str | None = None
    ) -> OrderStatus | None: ...

    async def claim_stale(
        self, limit: int, stale_after_s: float, lease_s: float
    ) -> list[StaleOrder]: ...

    async def orders_awaiting_stock_release(self, limit: int) -> list[uuid.UUID]: ...

    async def count_by_status(self) -> dict[OrderStatus, int]:
        """How many orders each status holds now, every status included (0 for none)."""

    async def mark_stock_released(self, order_id: uuid.UUID) -> None: ...


class UnitOfWork(Protocol):
    async def transaction(
        self, work: Callable[[OrderRepository], Awaitable[T]], *, name: str
    ) -> T:
        """Run `work` in one transaction that commits when it returns. `work` may run more
        than once (deadlock retry), so it must have no effect outside the transaction."""

    async def autocommit(
        self, work: Callable[[OrderRepository], Awaitable[T]], *, name: str
    ) -> T:
        """Run `work` with each statement committing on its own, which saves the round
        trips of BEGIN and COMMIT. Only for work that reads, or whose one write is a single
        statement (see the repository methods). Rerun on deadlock like `transaction`."""


@dataclass(frozen=True)
class PriceLookup:
    prices: dict[int, Decimal]
    unknown: frozenset[int] = field(default_factory=frozenset)


class ProductCatalog(Protocol):
    async def lookup_prices(self, product_ids: Collection[int]) -> PriceLookup:
        """Prices of the known products and the set of unknown ones (a price never changes).

        Raises InventoryUnavailable when the inventory cannot answer."""


class StockReleaser(Protocol):
    async def release_stock(self, order_id: uuid.UUID) -> None:
        """Give back whatever the order holds; idempotent. Raises InventoryUnavailable."""


class StepPublisher(Protocol):
    async def publish_first_steps(self, order_ids: Sequence[uuid.UUID]) -> None:
        """Hand new orders to the lifecycle worker. Never raises: an order whose task was
        lost is re-driven by the stale monitor once its first step is overdue."""


class OrderChanges(Protocol):
    async def wait(self) -> bool:
        """Until the order may have changed: True; or the server is stopping: False."""


class OrderChangeFeed(Protocol):
    def subscribe(self, order_id: uuid.UUID) -> AbstractAsyncContextManager[OrderChanges]:
        """Listen for changes of one order from now until the context exits."""


class OrderMetrics(Protocol):
    """What the service layer counts, each where the change is committed."""

    def orders_created(self, count: int) -> None: ...

    def order_transitioned(self, from_status: OrderStatus, to_status: OrderStatus) -> None: ...

    def bulk_items(self, created: int, repeats: int, rejected: int) -> None:
        """One batch of a BulkCreateOrders stream: new orders, earlier orders returned for
        their request_id, and requests answered with an error."""

    def watch_opened(self) -> None: ...

    def watch_closed(self) -> None: ...

    def orders_by_status(self, counts: Mapping[OrderStatus, int]) -> None: ...


class NoOrderMetrics:
    """Metrics off (ORDERS_METRICS_ADDR empty): nothing is counted."""

    def orders_created(self, count: int) -> None:
        pass

    def order_transitioned(self, from_status: OrderStatus, to_status: OrderStatus) -> None:
        pass

    def bulk_items(self, created: int, repeats: int, rejected: int) -> None:
        pass

    def watch_opened(self) -> None:
        pass

    def watch_closed(self) -> None:
        pass

    def orders_by_status(self, counts: Mapping[OrderStatus, int]) -> None:
        pass
