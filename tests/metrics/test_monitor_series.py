"""The monitor's /metrics: stale orders re-driven and failed, and the lifecycle's health
read from the broker at scrape time (the queue's length is the broker's LLEN)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import pytest
import redis

import services.inventory.app as inventory_app
from services.common.config import Settings
from services.common.lifecycle.health import WorkerBeat, forget_beat, write_beat
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE
from services.stale_monitor.runner import StopRequest, run_monitor
from tests.auth import secured_by
from tests.metrics.conftest import CUSTOMER_PREFIX
from tests.metrics.scrape import Scrape, scrape
from tests.orders.integration.clients import Clients, Status, sql
from tests.orders.integration.servers import start_orders_server
from tests.support import BackgroundServer, free_port, private_database, wait_until

pytestmark = pytest.mark.integration

STALE = "fulfillment_stale_orders_total"
FAKE_WORKER = "metrics-test-worker"


@pytest.fixture(scope="module")
def own_database() -> Iterator[str]:
    """The monitor sweeps every overdue order of its database: only this module's."""
    with private_database("fulfillment_metrics_monitor") as url:
        yield url


@pytest.fixture
def stack(settings: Settings, own_database: str) -> Iterator[tuple[Settings, Clients]]:
    ours = replace(
        settings, database_url=own_database, inventory_database_url=own_database,
        orders_database_url=own_database,
    )
    with BackgroundServer(partial(inventory_app.build, ours), secured_by(ours)) as inventory:
        orders = start_orders_server(replace(ours, inventory_addr=inventory.addr))
        try:
            ours = replace(ours, inventory_addr=inventory.addr, orders_addr=orders.addr)
            with Clients.connect(orders.addr, inventory.addr, ours) as clients:
                yield ours, clients
        finally:
            orders.background.stop()


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    """The run's broker with an empty lifecycle queue and one live worker (a heartbeat:
    the monitor judges nothing stale while no worker consumes), none of it left after."""
    client = redis.Redis.from_url(redis_url)
    client.delete(LIFECYCLE_QUEUE)
    write_beat(client, WorkerBeat(FAKE_WORKER, time.time() + 60, True, 0, None, None))
    try:
        yield client
    finally:
        forget_beat(client, FAKE_WORKER)
        client.delete(LIFECYCLE_QUEUE)
        client.close()


def test_stale_orders_redriven_and_failed_and_the_queue_as_the_broker_sees_it(
    stack: tuple[Settings, Clients], broker: redis.Redis, own_database: str
) -> None:
    settings, clients = stack
    order = clients.create_order(f"{CUSTOMER_PREFIX}{uuid.uuid4().hex[:8]}", [(clients.create_product(), 1)])
    sql(
        own_database,
        "UPDATE orders.orders SET next_step_due_time = now() - interval '1 hour' WHERE order_id = %s",
        (order.order_id,),
    )
    port = free_port()
    monitor_settings = replace(
        settings, sweep_interval_s=0.1, stale_after_s=0.0, stale_retries=1,
        monitor_metrics_addr=f"127.0.0.1:{port}",
    )
    stop = StopRequest()
    monitor = threading.Thread(target=run_monitor, args=(monitor_settings, stop), daemon=True)
    monitor.start()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        redriven: Scrape = wait_until(
            lambda: (s := scrape(url)).value(STALE, action="redriven") == 1 and s,
            timeout=30, what="the stale order's re-drive",
        )
        assert redriven.value(STALE, action="failed") == 0
        # Its first step and the re-drive wait in the queue: nothing consumes it here.
        length = broker.llen(LIFECYCLE_QUEUE)
        assert length == 2
        assert scrape(url).value("fulfillment_lifecycle_queue_length") == length
        assert redriven.value("fulfillment_lifecycle_live_workers") >= 1
        assert redriven.value("fulfillment_broker_up") == 1

        # The step messages are lost (the broker was flushed, say): the next claim fails it.
        broker.delete(LIFECYCLE_QUEUE)
        failed = wait_until(
            lambda: (s := scrape(url)).value(STALE, action="failed") == 1 and s,
            timeout=30, what="the stale order to be failed",
        )
        assert failed.value(STALE, action="redriven") == 1
        assert failed.value("fulfillment_lifecycle_queue_length") == broker.llen(LIFECYCLE_QUEUE) == 0
    finally:
        stop.set()
        monitor.join(30)
    assert not monitor.is_alive()
    assert clients.get(order.order_id).status == Status.FAILED
