"""Real inventory and orders servers on loopback ports, real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import pytest

import services.inventory.app as inventory_app
from services.common.config import Settings
from tests.auth import secured_by
from tests.orders.integration.clients import (
    TEST_CUSTOMER_PREFIX,
    Clients,
)
from tests.orders.integration.servers import OrdersServer, retire_orders, start_orders_server
from tests.support import BackgroundServer


@pytest.fixture(scope="package")
def inventory_server(settings: Settings) -> Iterator[BackgroundServer]:
    with BackgroundServer(partial(inventory_app.build, settings), secured_by(settings)) as server:
        yield server


@pytest.fixture(scope="package")
def orders_settings(settings: Settings, inventory_server: BackgroundServer) -> Settings:
    return replace(settings, inventory_addr=inventory_server.addr)


@pytest.fixture(scope="package")
def orders_server(orders_settings: Settings) -> Iterator[OrdersServer]:
    server = start_orders_server(orders_settings)
    try:
        yield server
    finally:
        server.background.stop()


@pytest.fixture(scope="package")
def clients(
    orders_server: OrdersServer, inventory_server: BackgroundServer, settings: Settings
) -> Iterator[Clients]:
    with Clients.connect(orders_server.addr, inventory_server.addr, settings) as clients:
        yield clients


@pytest.fixture(scope="package", autouse=True)
def retire_test_orders(database_url: str, redis_url: str) -> Iterator[None]:
    """After the package: retire the orders these tests left moving (servers.retire_orders)."""
    yield
    retire_orders(database_url, redis_url, TEST_CUSTOMER_PREFIX, "orders")
