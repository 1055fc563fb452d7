"""Build proto messages from domain values."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2 as inventory_pb2,
)
from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2 as reservation_pb2,
)
from services.inventory.domain.pricing import format_price
from services.inventory.domain.products import Product, StockLevel
from services.inventory.domain.reservations import ReservationLine


def product(value: Product) -> inventory_pb2.Product:
    create_time = Timestamp()
    create_time.FromDatetime(value.create_time)
    return inventory_pb2.Product(
        product_id=value.product_id,
        sku=value.sku,
        name=value.name,
        description=value.description,
        price=format_price(value.price),
        stock_level=value.stock_level,
        create_time=create_time,
    )


def stock_level(value: StockLevel) -> inventory_pb2.StockLevel:
    return inventory_pb2.StockLevel(product_id=value.product_id, stock_level=value.stock_level)


def reservation_items(lines: Iterable[ReservationLine]) -> list[reservation_pb2.ReservationItem]:
    return [
        reservation_pb2.ReservationItem(product_id=line.product_id, quantity=line.quantity)
        for line in lines
    ]
