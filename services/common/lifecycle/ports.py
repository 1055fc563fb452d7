"""The two services as the lifecycle's actors (worker, monitor) see them, the errors those
answer in the actors' terms, and the broker they publish steps to.

The actors' rules are written against these protocols; grpc_clients and step_publisher
implement them, and the unit tests implement them in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.common.lifecycle.status import OrderStatus


@dataclass(frozen=True)
class OrderItem:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class OrderSnapshot:
    order_id: str
    status: OrderStatus
    items: tuple[OrderItem, ...]


@dataclass(frozen=True)
class Shortfall:
    product_id: int
    requested: int
    # None when the inventory did not say (a reason without that metadata).
    available: int | None


@dataclass(frozen=True)
class AdvanceResult:
    order: OrderSnapshot
    applied: bool
    # How many of the call's then_statuses applied after the transition.
    then_applied: int = 0


@dataclass(frozen=True)
class StaleOrder:
    order: OrderSnapshot
    stale_claims: int


class OrderNotFound(Exception):
    """The orders service does not know the order."""


class IllegalTransition(Exception):
    """The compare-and-set found the order in another status than expected."""

    def __init__(self, order_id: str, current: OrderStatus) -> None:
        super().__init__(f"order {order_id} is {current}")
        self.order_id = order_id
        self.current = current


class StockShortfall(Exception):
    """The reservation was refused because some products are short; nothing was held."""

    def __init__(self, shortfalls: Sequence[Shortfall]) -> None:
        super().__init__(f"{len(shortfalls)} product(s) short")
        self.shortfalls = tuple(shortfalls)


class ReservationRefused(Exception):
    """The order's reservation was already released, so inventory will not hold stock again."""


class ReservationRejected(Exception):
    """Inventory cannot reserve the items at all (e.g. an unknown product)."""


class PublishFailed(Exception):
    """A step task could not be handed to the broker."""


class OrdersGateway(Protocol):
    def get_order(self, order_id: str) -> OrderSnapshot: ...

    def advance_order(
        self,
        order_id: str,
        expected_status: OrderStatus,
        to_status: OrderStatus,
        note: str,
        next_step_due_in_s: float,
        then_statuses: Sequence[OrderStatus] = (),
    ) -> AdvanceResult:
        """The compare-and-set; once it applied, each of `then_statuses` in turn, each its
        own compare-and-set, until one does not apply. Raises IllegalTransition naming the
        order's status when it is neither where expected nor past the move."""

    def claim_stale_orders(
        self, limit: int, stale_after_s: float, lease_s: float
    ) -> list[StaleOrder]: ...


class ReservationsGateway(Protocol):
    def reserve_stock(self, order_id: str, items: Sequence[OrderItem]) -> None:
        """Raises StockShortfall, ReservationRefused or ReservationRejected."""

    def release_stock(self, order_id: str) -> tuple[OrderItem, ...]: ...

    def is_serving(self) -> bool:
        """The inventory answers its health check as SERVING."""


class StepPublisher(Protocol):
    def publish_step(
        self, order_id: str, status: OrderStatus, delay_s: float = 0.0, note: str = ""
    ) -> None:
        """Raises PublishFailed."""
