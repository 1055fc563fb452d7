"""In-process inventory and orders servers with metrics on (the settings' default
addresses; no server opens a listener), and one /metrics endpoint of this test process,
on a free port, serving what they count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial

import pytest

import services.inventory.app as inventory_app
from services.common.config import Settings
from services.common.metrics.endpoint import in_process_registry, start_endpoint
from tests.auth import secured_by
from tests.metrics.scrape import Scrape, scrape
from tests.orders.integration.clients import Clients
from tests.orders.integration.servers import OrdersServer, retire_orders, start_orders_server
from tests.support import BackgroundServer, free_port

# Every customer these tests create starts so; the package's teardown retires their orders.
CUSTOMER_PREFIX = "metrics-test-"


@pytest.fixture(scope="package")
def metrics_url() -> Iterator[str]:
    endpoint = start_endpoint(f"127.0.0.1:{free_port()}", in_process_registry(), "tests")
    assert endpoint is not None
    try:
        yield f"http://{endpoint.addr}/metrics"
    finally:
        endpoint.close()


@pytest.fixture(scope="package")
def read_metrics(metrics_url: str) -> Callable[[], Scrape]:
    return partial(scrape, metrics_url)


@pytest.fixture(scope="package")
def metrics_settings(settings: Settings) -> Settings:
    assert settings.orders_metrics_addr and settings.inventory_metrics_addr, "metrics on, as by default"
    return settings


@pytest.fixture(scope="package")
def inventory_server(metrics_settings: Settings) -> Iterator[BackgroundServer]:
    build = partial(inventory_app.build, metrics_settings)
    with BackgroundServer(build, secured_by(metrics_settings)) as server:
        yield server


@pytest.fixture(scope="package")
def orders_server(
    metrics_settings: Settings, inventory_server: BackgroundServer
) -> Iterator[OrdersServer]:
    server = start_orders_server(replace(metrics_settings, inventory_addr=inventory_server.addr))
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
    """Afterwards: retire the orders these tests left moving (servers.retire_orders)."""
    yield
    retire_orders(database_url, redis_url, CUSTOMER_PREFIX, "metrics")
