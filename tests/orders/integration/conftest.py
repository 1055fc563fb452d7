"""Real inventory and orders servers on loopback ports, real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial

import pytest
import redis

import services.inventory.app as inventory_app
from services.common.config import Settings
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE
from services.common.server import ServiceParts
from services.orders.app import OrdersApp, build_app
from tests.auth import secured_by
from tests.orders.integration.clients import (
    TEST_CUSTOMER_PREFIX,
    Clients,
    queued_step_tasks,
    sql,
)
from tests.support import BackgroundServer


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
        app = await build_app(settings)
        built.append(app)
        return app.parts

    background = BackgroundServer(build, secured_by(settings)).start()
    return OrdersServer(background, built[0])


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
    """After the package: fail the orders these tests left moving (with their history row,
    as a transition would) and drop their queued step tasks, so later test packages (the
    stale monitor's, the worker's) do not inherit them. Nothing else runs by then."""
    yield
    retired = sql(database_url, _RETIRE_TEST_ORDERS, (TEST_CUSTOMER_PREFIX + "%",))
    ours = {order_id for (order_id,) in retired}
    client = redis.Redis.from_url(redis_url)
    try:
        for raw, order_id, _expected in queued_step_tasks(redis_url):
            if order_id in ours:
                client.lrem(LIFECYCLE_QUEUE, 1, raw)
    finally:
        client.close()


_RETIRE_TEST_ORDERS = """
    WITH retired AS (
        UPDATE orders.orders
        SET status = 'FAILED', status_note = 'retired by the orders test suite',
            update_time = clock_timestamp(), next_step_due_time = NULL, stale_claims = 0
        WHERE customer_name LIKE %s
          AND status IN ('PENDING', 'PROCESSING', 'PACKAGING', 'SHIPPED')
        RETURNING order_id, update_time, status_note
    ), recorded AS (
        INSERT INTO orders.order_history (order_id, from_status, to_status, time, note, actor)
        SELECT r.order_id,
               (SELECT h.to_status FROM orders.order_history AS h
                WHERE h.order_id = r.order_id ORDER BY h.id DESC LIMIT 1),
               'FAILED', r.update_time, r.status_note, 'service:orders-test-suite'
        FROM retired AS r
    )
    SELECT order_id::text FROM retired
"""
