"""Reservations: stock held for one order, all items or none, at most once per order."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from services.common.errors import Validator
from services.common.text import check_text
from services.inventory.domain.products import MAX_STOCK_LEVEL, check_product_id

ORDER_ID_MAX_LENGTH = 128
MAX_RESERVATION_ITEMS = 1000


class ReservationStatus(enum.StrEnum):
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"
    RELEASED = "RELEASED"


@dataclass(frozen=True, order=True)
class ReservationLine:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class Shortfall:
    product_id: int
    requested: int
    available: int


@dataclass(frozen=True)
class ReservationRequest:
    order_id: str
    # Ascending product id: the order in which product rows are locked.
    lines: tuple[ReservationLine, ...]

    @property
    def product_ids(self) -> list[int]:
        return [line.product_id for line in self.lines]


@dataclass(frozen=True)
class Reservation:
    order_id: str
    status: ReservationStatus
    lines: tuple[ReservationLine, ...] = ()
    shortfalls: tuple[Shortfall, ...] = ()


def shortfalls_of(
    lines: tuple[ReservationLine, ...], available: dict[int, int]
) -> list[Shortfall]:
    """The lines that `available` stock cannot cover; `available` must name every product."""
    return [
        Shortfall(line.product_id, line.quantity, available[line.product_id])
        for line in lines
        if available[line.product_id] < line.quantity
    ]


def check_order_id(validator: Validator, field_path: str, order_id: str) -> bool:
    return check_text(
        validator, field_path, order_id, max_length=ORDER_ID_MAX_LENGTH, identifier=True
    )


def reservation_request(order_id: str, items: list[tuple[int, int]]) -> ReservationRequest:
    """Validate (product_id, quantity) pairs for one order; InvalidArgument lists problems."""
    validator = Validator()
    check_order_id(validator, "order_id", order_id)
    if not items:
        validator.fail("items", "must contain at least one item")
    elif len(items) > MAX_RESERVATION_ITEMS:
        validator.fail(
            "items", f"must contain at most {MAX_RESERVATION_ITEMS} items, got {len(items)}"
        )
    else:
        _check_items(validator, items)
    validator.raise_if_invalid()
    lines = sorted(ReservationLine(product_id, quantity) for product_id, quantity in items)
    return ReservationRequest(order_id, tuple(lines))


def _check_items(validator: Validator, items: list[tuple[int, int]]) -> None:
    first_index: dict[int, int] = {}
    for index, (product_id, quantity) in enumerate(items):
        path = f"items[{index}]"
        if check_product_id(validator, f"{path}.product_id", product_id):
            if product_id in first_index:
                validator.fail(
                    f"{path}.product_id",
                    f"product {product_id} is already in items[{first_index[product_id]}]; "
                    "list each product once",
                )
            else:
                first_index[product_id] = index
        if quantity < 1:
            validator.fail(f"{path}.quantity", f"must be >= 1, got {quantity}")
        elif quantity > MAX_STOCK_LEVEL:
            validator.fail(
                f"{path}.quantity", f"must be at most {MAX_STOCK_LEVEL}, got {quantity}"
            )


def release_request(order_id: str) -> str:
    """The order id of a ReleaseStock request, validated."""
    validator = Validator()
    check_order_id(validator, "order_id", order_id)
    validator.raise_if_invalid()
    return order_id
