"""In-process inventory and orders servers with metrics on (the settings' default
addresses; no server opens a listener), and one /metrics endpoint of this test process,
on a free port, serving what they count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial

import pytest
import redis

import services.inventory.app as inventory_app
from services.common.config import Settings
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE
from services.common.metrics.endpoint import in_process_registry, start_endpoint
from services.common.server import ServiceParts
from services.orders.app import OrdersApp, build_app
from tests.auth import secured_by
from tests.metrics.scrape import Scrape, scrape
from tests.orders.integration.clients import Clients, queued_step_tasks, sql
from tests.support import BackgroundServer, free_port

# Every customer these tests create starts so; the package's teardown retires their orders.
CUSTOMER_PREFIX = "metrics-test-"


@dataclass
class OrdersServer:
    background: BackgroundServer
    app: OrdersApp

    @property
    def addr(self) -> str:
        return self.background.addr


def start_orders_server(settings: Settings) -> OrdersServer:
    built: list[OrdersApp] = []

    async def build() -> ServiceParts:
        built.append(await build_app(settings))
        return built[0].parts

    background = BackgroundServer(build, secured_by(settings)).start()
    return OrdersServer(background, built[0])


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
    """Afterwards: fail the orders these tests left moving (with their history row) and
    drop their queued step tasks, so no later package inherits them."""
    yield
    retired = sql(database_url, _RETIRE, (CUSTOMER_PREFIX + "%",))
    ours = {order_id for (order_id,) in retired}
    client = redis.Redis.from_url(redis_url)
    try:
        for raw, order_id, _expected in queued_step_tasks(redis_url):
            if order_id in ours:
                client.lrem(LIFECYCLE_QUEUE, 1, raw)
    finally:
        client.close()


_RETIRE = """
    WITH retired AS (
        UPDATE orders.orders
        SET status = 'FAILED', status_note = 'retired by the metrics test suite',
            update_time = clock_timestamp(), next_step_due_time = NULL, stale_claims = 0
        WHERE customer_name LIKE %s
          AND status IN ('PENDING', 'PROCESSING', 'PACKAGING', 'SHIPPED')
        RETURNING order_id, update_time, status_note
    ), recorded AS (
        INSERT INTO orders.order_history (order_id, from_status, to_status, time, note, actor)
        SELECT r.order_id,
               (SELECT h.to_status FROM orders.order_history AS h
                WHERE h.order_id = r.order_id ORDER BY h.id DESC LIMIT 1),
               'FAILED', r.update_time, r.status_note, 'service:metrics-test-suite'
        FROM retired AS r
    )
    SELECT order_id::text FROM retired
"""
