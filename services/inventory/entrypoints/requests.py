"""Turn proto requests into validated domain values; bad input becomes InvalidArgument."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.errors import Validator
from services.common.pagination import PageTokens, int64_key, resolve_page_size
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2 as inventory_pb2,
)
from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2 as reservation_pb2,
)
from services.inventory.domain import products, reservations

PRODUCTS_PAGE_TOKEN_KIND = "products"


@dataclass(frozen=True)
class PageRequest:
    after_id: int
    page_size: int


def new_product(request: inventory_pb2.CreateProductRequest) -> products.NewProduct:
    initial_stock = request.initial_stock if request.HasField("initial_stock") else None
    return products.new_product(
        request.sku, request.name, request.description, request.price, initial_stock
    )


def product_id(request: inventory_pb2.GetProductRequest | inventory_pb2.GetStockRequest) -> int:
    validator = Validator()
    products.check_product_id(validator, "product_id", request.product_id)
    validator.raise_if_invalid()
    return request.product_id


def product_ids(request: inventory_pb2.BatchGetProductsRequest) -> list[int]:
    ids = list(request.product_ids)
    validator = Validator()
    products.check_product_ids(validator, "product_ids", ids)
    validator.raise_if_invalid()
    return ids


def new_stock_level(request: inventory_pb2.SetStockRequest) -> tuple[int, int]:
    validator = Validator()
    products.check_product_id(validator, "product_id", request.product_id)
    products.check_stock_level(validator, "stock_level", request.stock_level)
    validator.raise_if_invalid()
    return request.product_id, request.stock_level


def stock_delta(request: inventory_pb2.AdjustStockRequest) -> tuple[int, int]:
    validator = Validator()
    products.check_product_id(validator, "product_id", request.product_id)
    products.check_stock_delta(validator, "delta", request.delta)
    validator.raise_if_invalid()
    return request.product_id, request.delta


def products_page(
    request: inventory_pb2.ListProductsRequest, page_tokens: PageTokens
) -> PageRequest:
    page_size = resolve_page_size(request.page_size)
    after_id = page_tokens.decode(
        request.page_token, PRODUCTS_PAGE_TOKEN_KIND, None, parse=_after_id
    )
    return PageRequest(after_id=after_id or 0, page_size=page_size)


def _after_id(last_key: list[Any]) -> int:
    (after_id,) = last_key
    return int64_key(after_id, minimum=1)


def reservation_request(
    request: reservation_pb2.ReserveStockRequest,
) -> reservations.ReservationRequest:
    return reservations.reservation_request(
        request.order_id, [(item.product_id, item.quantity) for item in request.items]
    )


def release_order_id(request: reservation_pb2.ReleaseStockRequest) -> str:
    return reservations.release_request(request.order_id)
