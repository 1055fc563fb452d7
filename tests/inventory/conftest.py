"""A real inventory server on a loopback port for the whole run, and gRPC clients to it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from functools import partial

import grpc
import pytest

from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    reservation_service_pb2_grpc,
)
from services.inventory.app import build
from tests.auth import authorized, secured_by
from tests.support import BackgroundServer

MakeProduct = Callable[..., inventory_service_pb2.Product]


@pytest.fixture(scope="session")
def inventory_server(settings: Settings) -> Iterator[BackgroundServer]:
    with BackgroundServer(partial(build, settings), secured_by(settings)) as server:
        yield server


@pytest.fixture(scope="session")
def inventory_channel(inventory_server: BackgroundServer) -> Iterator[grpc.Channel]:
    # A plain channel without retries: tests must see exactly what the server answered.
    # It presents no token by itself; the stubs below add the one their caller has.
    with grpc.insecure_channel(inventory_server.addr) as channel:
        yield channel


@pytest.fixture(scope="session")
def inventory(
    inventory_channel: grpc.Channel, settings: Settings
) -> inventory_service_pb2_grpc.InventoryServiceStub:
    """The public API as an admin."""
    return inventory_service_pb2_grpc.InventoryServiceStub(authorized(inventory_channel, settings))


@pytest.fixture(scope="session")
def reservations(
    inventory_channel: grpc.Channel, settings: Settings
) -> reservation_service_pb2_grpc.ReservationServiceStub:
    """The internal API as its real callers (the orders service, the worker): `service`."""
    return reservation_service_pb2_grpc.ReservationServiceStub(
        authorized(inventory_channel, settings, Role.SERVICE)
    )


@pytest.fixture
def make_product(inventory: inventory_service_pb2_grpc.InventoryServiceStub) -> MakeProduct:
    """Create a product with a unique sku; tests share one database."""

    def create(stock: int = 0, price: str = "9.99", **fields: str) -> inventory_service_pb2.Product:
        request = inventory_service_pb2.CreateProductRequest(
            sku=fields.pop("sku", f"sku-{uuid.uuid4()}"),
            name=fields.pop("name", "Test product"),
            price=price,
            initial_stock=stock,
            **fields,
        )
        return inventory.CreateProduct(request, timeout=10)

    return create
