"""What the lifecycle rules need from the outside world, and the errors it may answer.

The service layer is written against these protocols; `adapters` implement them over
gRPC and Celery, and the unit tests implement them in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.lifecycle_worker.domain import OrderItem, OrderSnapshot, Shortfall


class OrderNotFound(Exception):
    """The orders service does not know the order."""


class IllegalTransition(Exception):
    """The compare-and-set found the order in another status than expected."""

    def __init__(self, order_id: str, current: str) -> None:
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


class OrdersGateway(Protocol):
    def get_order(self, order_id: str) -> OrderSnapshot: ...

    def advance_order(
        self,
        order_id: str,
        expected_status: str,
        to_status: str,
        note: str,
        next_step_due_in_s: float,
        then_statuses: Sequence[str] = (),
    ) -> AdvanceResult:
        """The compare-and-set; once it applied, each of `then_statuses` in turn, each its
        own compare-and-set, until one does not apply."""

    def claim_stale_orders(
        self, limit: int, stale_after_s: float, lease_s: float
    ) -> list[StaleOrder]: ...


class ReservationsGateway(Protocol):
    def reserve_stock(self, order_id: str, items: Sequence[OrderItem]) -> None: ...

    def release_stock(self, order_id: str) -> tuple[OrderItem, ...]: ...

    def is_serving(self) -> bool:
        """The inventory answers its health check as SERVING."""


class StepPublisher(Protocol):
    def publish_step(
        self, order_id: str, status: str, delay_s: float = 0.0, note: str = ""
    ) -> None: ...
