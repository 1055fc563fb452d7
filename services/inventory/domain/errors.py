"""What can go wrong in the inventory, named for the caller; mapped to gRPC codes elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.common.errors import (
    AlreadyExists,
    ErrorInfo,
    FailedPrecondition,
    NotFound,
    PreconditionViolation,
    Reason,
)
from services.inventory.domain.reservations import Shortfall

# Structured reasons name at most this many products (the lowest ids); the message and the
# PreconditionFailure still name all of them. Every detail travels in the gRPC trailers,
# which a client refuses above 16 KiB and, at random, above 8 KiB. Measured with unknown
# 19-digit ids in one BatchGetProducts: a reason for each failed one call in five at 60 ids
# (RESOURCE_EXHAUSTED) and nearly all at 100; with 16, every call up to 150 ids answers
# NOT_FOUND (190 without reasons). A caller that must know every unknown id asks again
# without the ones named.
MAX_PRODUCTS_NAMED_IN_REASONS = 16


class ProductNotFound(NotFound):
    def __init__(self, product_ids: Iterable[int]) -> None:
        self.product_ids = sorted(set(product_ids))
        if len(self.product_ids) == 1:
            message = f"product {self.product_ids[0]} does not exist"
        else:
            message = f"products {_join(self.product_ids)} do not exist"
        super().__init__(
            message,
            [
                ErrorInfo(Reason.PRODUCT_NOT_FOUND, {"product_id": str(product_id)})
                for product_id in self.product_ids[:MAX_PRODUCTS_NAMED_IN_REASONS]
            ],
        )


class DuplicateSku(AlreadyExists):
    def __init__(self, sku: str) -> None:
        super().__init__(f"a product with sku {sku!r} already exists")
        self.sku = sku


class StockWouldGoNegative(FailedPrecondition):
    def __init__(self, product_id: int, stock_level: int, delta: int) -> None:
        super().__init__(
            f"stock of product {product_id} is {stock_level}; adjusting it by {delta} "
            "would make it negative, so nothing was changed",
            [_stock_violation(product_id, f"stock {stock_level}, delta {delta}")],
        )


class StockLimitExceeded(FailedPrecondition):
    def __init__(self, product_id: int, stock_level: int, delta: int, limit: int) -> None:
        super().__init__(
            f"stock of product {product_id} is {stock_level}; adjusting it by {delta} "
            f"would exceed the maximum of {limit}, so nothing was changed",
            [_stock_violation(product_id, f"stock {stock_level}, delta {delta}, max {limit}")],
        )


class InsufficientStock(FailedPrecondition):
    """A reservation was refused as a whole because some products were short."""

    def __init__(self, order_id: str, shortfalls: Sequence[Shortfall]) -> None:
        self.order_id = order_id
        self.shortfalls = list(shortfalls)
        named = ", ".join(
            f"product {s.product_id} (requested {s.requested}, available {s.available})"
            for s in self.shortfalls
        )
        super().__init__(
            f"not enough stock for order {order_id}: {named}; nothing was reserved",
            [
                _stock_violation(
                    s.product_id, f"requested {s.requested}, available {s.available}"
                )
                for s in self.shortfalls
            ],
            infos=[
                _shortfall_info(s)
                for s in sorted(self.shortfalls, key=lambda s: s.product_id)[
                    :MAX_PRODUCTS_NAMED_IN_REASONS
                ]
            ],
        )


class ReservationAlreadyReleased(FailedPrecondition):
    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"reservation for order {order_id} was already released",
            infos=[ErrorInfo(Reason.RESERVATION_RELEASED, {"order_id": order_id})],
        )
        self.order_id = order_id


def _stock_violation(product_id: int, description: str) -> PreconditionViolation:
    return PreconditionViolation(
        type="STOCK", subject=f"products/{product_id}", description=description
    )


def _shortfall_info(shortfall: Shortfall) -> ErrorInfo:
    return ErrorInfo(
        Reason.INSUFFICIENT_STOCK,
        {
            "product_id": str(shortfall.product_id),
            "requested": str(shortfall.requested),
            "available": str(shortfall.available),
        },
    )


def _join(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)
