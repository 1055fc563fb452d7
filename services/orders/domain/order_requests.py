"""Rules for a request to create an order: validation, its idempotency fingerprint, pricing."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal

from services.common.errors import FieldViolation, InvalidArgument, Validator
from services.common.text import check_text
from services.orders.domain.model import NewOrder, OrderLine

CUSTOMER_NAME_MAX_LENGTH = 200
CUSTOMER_ID_MAX_LENGTH = 200
REQUEST_ID_MAX_LENGTH = 200
MAX_ITEMS = 100
MAX_QUANTITY = 1_000_000
CANCEL_REASON_MAX_LENGTH = 500
NOTE_MAX_LENGTH = 10_000
# Due times, stale grace and leases beyond a year are mistakes, not plans.
MAX_SECONDS = 365 * 24 * 3600


@dataclass(frozen=True)
class RequestedItem:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class OrderRequest:
    """A request to create an order exactly as the caller sent it."""

    customer_name: str
    items: tuple[RequestedItem, ...]
    request_id: str = ""
    # Whose order it is to be: empty for the caller's own (only admins may name another).
    customer_id: str = ""


@dataclass(frozen=True)
class ValidOrderRequest:
    customer_name: str
    items: tuple[RequestedItem, ...]
    request_id: str | None
    # Same value for the same customer and the same items in any order.
    fingerprint: str
    # As the caller sent it; empty for its own order.
    requested_customer_id: str = ""

    @property
    def product_ids(self) -> list[int]:
        return [item.product_id for item in self.items]

    def product_field(self, product_id: int) -> str:
        index = self.product_ids.index(product_id)
        return f"items[{index}].product_id"

    def priced(
        self, order_id: uuid.UUID, customer_id: str, prices: dict[int, Decimal]
    ) -> NewOrder:
        lines = tuple(
            OrderLine(item.product_id, item.quantity, prices[item.product_id])
            for item in self.items
        )
        # The fingerprint matters only to retries, and only a request_id allows them.
        fingerprint = self.fingerprint if self.request_id else None
        return NewOrder(
            order_id, customer_id, self.customer_name, lines, self.request_id, fingerprint
        )


def validate_order_request(request: OrderRequest) -> ValidOrderRequest:
    """The request, cleaned; InvalidArgument lists every problem at once."""
    validator = Validator()
    customer_name = request.customer_name.strip()
    check_text(validator, "customer_name", customer_name, max_length=CUSTOMER_NAME_MAX_LENGTH)
    check_text(
        validator, "request_id", request.request_id, max_length=REQUEST_ID_MAX_LENGTH, required=False
    )
    check_customer_id(validator, "customer_id", request.customer_id)
    _check_items(validator, request.items)
    validator.raise_if_invalid()
    return ValidOrderRequest(
        customer_name=customer_name,
        items=request.items,
        request_id=request.request_id or None,
        fingerprint=request_fingerprint(customer_name, request.items),
        requested_customer_id=request.customer_id,
    )


def check_customer_id(validator: Validator, field_path: str, customer_id: str) -> None:
    check_text(
        validator, field_path, customer_id, max_length=CUSTOMER_ID_MAX_LENGTH,
        required=False, identifier=True,
    )


def request_fingerprint(customer_name: str, items: tuple[RequestedItem, ...]) -> str:
    body = {
        "customer_name": customer_name,
        "items": sorted([item.product_id, item.quantity] for item in items),
    }
    canonical = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_cancel_reason(reason: str) -> str:
    reason = reason.strip()
    validator = Validator()
    check_text(validator, "reason", reason, max_length=CANCEL_REASON_MAX_LENGTH, required=False)
    validator.raise_if_invalid()
    return reason


def check_note(validator: Validator, field_path: str, note: str) -> None:
    check_text(validator, field_path, note, max_length=NOTE_MAX_LENGTH, required=False, multiline=True)


def check_seconds(
    validator: Validator, field_path: str, value: float, *, positive: bool = False
) -> None:
    low = "> 0" if positive else ">= 0"
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        validator.fail(field_path, f"must be a number of seconds {low}, got {value}")
    elif value > MAX_SECONDS:
        validator.fail(field_path, f"must be at most {MAX_SECONDS} seconds (a year), got {value}")


def _check_items(validator: Validator, items: tuple[RequestedItem, ...]) -> None:
    if not items:
        validator.fail("items", "must contain at least one item")
        return
    if len(items) > MAX_ITEMS:
        validator.fail("items", f"must contain at most {MAX_ITEMS} items, got {len(items)}")
        return
    first_index: dict[int, int] = {}
    for index, item in enumerate(items):
        path = f"items[{index}]"
        if item.product_id <= 0:
            validator.fail(f"{path}.product_id", f"must be > 0, got {item.product_id}")
        elif item.product_id in first_index:
            validator.fail(
                f"{path}.product_id",
                f"product {item.product_id} is already in items[{first_index[item.product_id]}]; "
                "list each product once",
            )
        else:
            first_index[item.product_id] = index
        if not 1 <= item.quantity <= MAX_QUANTITY:
            validator.fail(
                f"{path}.quantity", f"must be between 1 and {MAX_QUANTITY}, got {item.quantity}"
            )


def invalid(field_path: str, description: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid request: {field_path}: {description}", [FieldViolation(field_path, description)]
    )
