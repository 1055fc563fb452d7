"""An orders server in this process for integration tests (the orders package's and the
metrics package's), and the clean-up both packages run after themselves."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from services.common.config import Settings
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE
from services.common.server import ServiceParts
from services.orders.app import OrdersApp, build_app
from tests.auth import secured_by
from tests.orders.integration.clients import queued_step_tasks, sql
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


def retire_orders(database_url: str, redis_url: str, customer_prefix: str, suite: str) -> None:
    """Fail the orders a test package left moving (customers named `customer_prefix`...),
    with their history row as a transition would, and drop their queued step tasks, so no
    later package (the stale monitor's, the worker's) inherits them."""
    retired = sql(database_url, _RETIRE, (
        f"retired by the {suite} test suite", customer_prefix + "%", f"service:{suite}-test-suite",
    ))
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
        SET status = 'FAILED', status_note = %s,
            update_time = clock_timestamp(), next_step_due_time = NULL, stale_claims = 0
        WHERE customer_name LIKE %s
          AND status IN ('PENDING', 'PROCESSING', 'PACKAGING', 'SHIPPED')
        RETURNING order_id, update_time, status_note
    ), recorded AS (
        INSERT INTO orders.order_history (order_id, from_status, to_status, time, note, actor)
        SELECT r.order_id,
               (SELECT h.to_status FROM orders.order_history AS h
                WHERE h.order_id = r.order_id ORDER BY h.id DESC LIMIT 1),
               'FAILED', r.update_time, r.status_note, %s
        FROM retired AS r
    )
    SELECT order_id::text FROM retired
"""
