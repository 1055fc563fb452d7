"""In-memory stand-ins for the orders service, inventory reservations and the broker.

They follow the contract's semantics (compare-and-set transitions, all-or-nothing
reservations keyed by order id, refusal after release) so the lifecycle rules can be
specified without servers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.common.lifecycle.health import LifecycleLag
from services.common.lifecycle.ports import (
    AdvanceResult,
    IllegalTransition,
    OrderItem,
    OrderNotFound,
    OrderSnapshot,
    PublishFailed,
    ReservationRefused,
    Shortfall,
    StaleOrder,
    StockShortfall,
)
from services.common.lifecycle.status import ENDED_EARLY, OrderStatus, has_reached


@dataclass
class FakeOrders:
    orders: dict[str, OrderSnapshot] = field(default_factory=dict)
    history: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    due_in: dict[str, float] = field(default_factory=dict)
    stale_batches: list[list[StaleOrder]] = field(default_factory=list)
    claims: list[tuple[int, float, float]] = field(default_factory=list)
    # A run of zero-delay steps finds the order canceled when it reaches this status.
    cancel_before: OrderStatus | None = None

    def add(
        self, order_id: str, items: Sequence[OrderItem], status: str = OrderStatus.PENDING
    ) -> None:
        self.orders[order_id] = OrderSnapshot(order_id, OrderStatus(status), tuple(items))
        self.history[order_id] = [("", status, "")]

    def set_status(self, order_id: str, status: str, note: str = "") -> None:
        order = self.orders[order_id]
        self.history[order_id].append((order.status, status, note))
        self.orders[order_id] = OrderSnapshot(order_id, OrderStatus(status), order.items)

    def status(self, order_id: str) -> OrderStatus:
        return self.orders[order_id].status

    def get_order(self, order_id: str) -> OrderSnapshot:
        return self._find(order_id)

    def _find(self, order_id: str) -> OrderSnapshot:
        if order_id not in self.orders:
            raise OrderNotFound(order_id)
        return self.orders[order_id]

    def advance_order(
        self, order_id: str, expected_status: OrderStatus, to_status: OrderStatus, note: str,
        next_step_due_in_s: float, then_statuses: Sequence[OrderStatus] = (),
    ) -> AdvanceResult:
        current = self._find(order_id).status
        if current == expected_status:
            self.set_status(order_id, to_status, note)
            self.due_in[order_id] = next_step_due_in_s
            then_applied = 0
            for status in then_statuses:
                if self.cancel_before == status:  # a cancel wins the race to this step
                    self.set_status(order_id, OrderStatus.CANCELED, "canceled meanwhile")
                    break
                self.set_status(order_id, status, "")
                then_applied += 1
            return AdvanceResult(self.orders[order_id], True, then_applied)
        if current is to_status or (current not in ENDED_EARLY and has_reached(current, to_status)):
            return AdvanceResult(self.orders[order_id], False)
        raise IllegalTransition(order_id, current)

    def claim_stale_orders(
        self, limit: int, stale_after_s: float, lease_s: float
    ) -> list[StaleOrder]:
        self.claims.append((limit, stale_after_s, lease_s))
        return self.stale_batches.pop(0) if self.stale_batches else []


@dataclass
class FakeReservations:
    stock: dict[int, int] = field(default_factory=dict)
    held: dict[str, tuple[OrderItem, ...]] = field(default_factory=dict)
    released: set[str] = field(default_factory=set)
    reserve_calls: int = 0
    on_reserve: Callable[[str], None] | None = None
    serving: bool = True

    def reserve_stock(self, order_id: str, items: Sequence[OrderItem]) -> None:
        self.reserve_calls += 1
        if order_id in self.released:
            raise ReservationRefused(f"order {order_id} was released")
        if order_id not in self.held:
            short = [
                Shortfall(i.product_id, i.quantity, self.stock.get(i.product_id, 0))
                for i in items
                if self.stock.get(i.product_id, 0) < i.quantity
            ]
            if short:
                raise StockShortfall(short)
            for item in items:
                self.stock[item.product_id] -= item.quantity
            self.held[order_id] = tuple(items)
        if self.on_reserve is not None:
            self.on_reserve(order_id)

    def is_serving(self) -> bool:
        return self.serving

    def release_stock(self, order_id: str) -> tuple[OrderItem, ...]:
        self.released.add(order_id)
        items = self.held.pop(order_id, ())
        for item in items:
            self.stock[item.product_id] += item.quantity
        return items


@dataclass
class FakePublisher:
    published: list[tuple[str, str, float, str]] = field(default_factory=list)
    broken: bool = False

    def publish_step(
        self, order_id: str, status: OrderStatus, delay_s: float = 0.0, note: str = ""
    ) -> None:
        if self.broken:
            raise PublishFailed("broker down")
        self.published.append((order_id, status, delay_s, note))


@dataclass
class FakeLifecycle:
    """The lifecycle's lag as the monitor reads it: one live worker and no lag unless set."""

    lag: LifecycleLag = field(default_factory=lambda: LifecycleLag(live_workers=1, queue_length=0, lag_s=0.0))
    unreadable: bool = False

    def read(self) -> LifecycleLag:
        from services.stale_monitor.service import LifecycleUnreadable

        if self.unreadable:
            raise LifecycleUnreadable("broker down")
        return self.lag
