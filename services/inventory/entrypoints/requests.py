"""Turn proto requests into validated domain values; bad input becomes InvalidArgument."""

from __future__ import annotations

from services.common.errors import Validator
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2 as inventory_pb2,
)
from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2 as reservation_pb2,
)
from services.inventory.domain import products, reservations


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


def reservation_request(
    request: reservation_pb2.ReserveStockRequest,
) -> reservations.ReservationRequest:
    return reservations.reservation_request(
        request.order_id, [(item.product_id, item.quantity) for item in request.items]
    )


def release_order_id(request: reservation_pb2.ReleaseStockRequest) -> str:
    return reservations.release_request(request.order_id)
