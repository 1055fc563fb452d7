"""Orders as plain values: what is stored, what is shown, what a transition records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from services.common.lifecycle.status import OrderStatus
from services.orders.domain.errors import invalid_order_id


@dataclass(frozen=True)
class OrderLine:
    product_id: int
    quantity: int
    # The product's price when the order was taken.
    unit_price: Decimal


@dataclass(frozen=True)
class Order:
    order_id: uuid.UUID
    customer_name: str
    status: OrderStatus
    items: tuple[OrderLine, ...]
    status_note: str
    create_time: datetime
    update_time: datetime
    next_step_due_time: datetime | None
    # Whose order this is (a customer token's subject).
    customer_id: str

    def after(self, entry: HistoryEntry) -> Order:
        """This order as it stood right after the transition `entry` recorded."""
        return replace(
            self,
            status=entry.to_status,
            status_note=entry.note,
            update_time=entry.time,
            next_step_due_time=entry.next_step_due_time,
        )


@dataclass(frozen=True)
class HistoryEntry:
    # Increases with every transition of an order, so it orders them.
    entry_id: int
    from_status: OrderStatus | None
    to_status: OrderStatus
    time: datetime
    note: str
    next_step_due_time: datetime | None
    # Who caused it: "customer:<subject>", "admin:<subject>" or "service:<subject>".
    actor: str


@dataclass(frozen=True)
class NewOrder:
    """A validated, priced order ready to be stored."""

    order_id: uuid.UUID
    customer_id: str
    customer_name: str
    lines: tuple[OrderLine, ...]
    request_id: str | None
    request_fingerprint: str | None

    @property
    def request_key(self) -> RequestKey | None:
        return None if self.request_id is None else RequestKey(self.customer_id, self.request_id)


@dataclass(frozen=True)
class RequestKey:
    """An idempotency key: request_ids are scoped per customer, so one customer can never
    receive another's order by sending the same key."""

    customer_id: str
    request_id: str


@dataclass(frozen=True)
class StoredRequest:
    """The order that holds a request_id, and the fingerprint of the body that created it."""

    order: Order
    fingerprint: str


@dataclass(frozen=True)
class StatusChange:
    """A committed transition: the order as it left it, and the status it left."""

    order: Order
    from_status: OrderStatus


@dataclass(frozen=True)
class StaleOrder:
    order: Order
    # Claims of the order's current step as stale, the latest included.
    stale_claims: int


@dataclass(frozen=True)
class OrderFilters:
    status: OrderStatus | None = None
    customer_name: str | None = None
    # The customer whose orders to list; None for every customer's (admins only).
    customer_id: str | None = None

    def as_token_filters(self) -> dict[str, str]:
        return {
            "status": self.status.value if self.status else "",
            "customer_name": self.customer_name or "",
            "customer_id": self.customer_id or "",
        }


@dataclass(frozen=True)
class PageKey:
    """Where a page of orders ends, in listing order (newest first)."""

    create_time: datetime
    order_id: uuid.UUID


def parse_order_id(raw: str, field_path: str = "order_id") -> uuid.UUID:
    try:
        return uuid.UUID(raw.strip())
    except (ValueError, AttributeError):
        raise invalid_order_id(field_path, raw) from None
