"""End-to-end: a backlog is not staleness. Thousands of orders accepted at once wait
behind `up`'s default two-slot worker far longer than the stale window; the monitor sees
the lifecycle's lag, re-drives none of them and fails none: all are delivered.

The issue's scenario is 10,000 orders (FULFILLMENT_TEST_BACKLOG_ORDERS=10000: about 150 s
here, the lag peaking near 150 s); CI runs 5,000 to stay within its time budget: their backlog still
outlasts the stale window more than ten times over."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from services.common.lifecycle.health import read_lifecycle_lag
from services.common.lifecycle.status import OrderStatus
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.lifecycle.stack import Services, Status, log_events, purge_broker, wait_started

ORDERS = int(os.environ.get("FULFILLMENT_TEST_BACKLOG_ORDERS", "5000"))
STALE_AFTER_S = 2.0
MONITOR = {
    "FULFILLMENT_STALE_AFTER_S": str(STALE_AFTER_S),
    "FULFILLMENT_SWEEP_INTERVAL_S": "0.5",
    "FULFILLMENT_STALE_RETRIES": "2",
}

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


class LagSampler:
    """The lifecycle's lag as the monitor reads it, sampled while the backlog drains."""

    def __init__(self, redis_url: str) -> None:
        self._client = redis.Redis.from_url(redis_url)
        self._stop = threading.Event()
        self.max_lag_s = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.max_lag_s = max(self.max_lag_s, read_lifecycle_lag(self._client).lag_s)

    def __enter__(self) -> LagSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.close()


def bulk_create(services: Services, customer: str, product_id: int, count: int) -> list[str]:
    def requests() -> Iterator[orders_pb2.CreateOrderRequest]:
        for _ in range(count):
            yield orders_pb2.CreateOrderRequest(
                customer_name=customer,
                items=[orders_pb2.CreateOrderItem(product_id=product_id, quantity=1)],
            )

    results = list(services.orders.BulkCreateOrders(requests(), timeout=300))
    assert [r.status.code for r in results] == [0] * count
    return [r.order.order_id for r in results]


def test_ten_thousand_orders_behind_a_two_slot_worker_are_all_delivered_none_stale(
    services: Services, redis_url: str
) -> None:
    purge_broker(redis_url)
    worker = services.start_worker(concurrency=2, wait=False)
    monitor = services.start_monitor(wait=False, **MONITOR)
    wait_started(worker, monitor)
    product = services.create_product(stock=ORDERS)
    who = f"backlog-{uuid.uuid4().hex[:8]}"
    try:
        with LagSampler(redis_url) as lag:
            started = time.monotonic()
            order_ids = set(bulk_create(services, who, product, ORDERS))
            orders = services.wait_all_terminal(who, ORDERS, timeout=360)
            drained_s = time.monotonic() - started
    finally:
        monitor.stop()
        worker.stop()

    print(
        f"backlog: {ORDERS} orders delivered in {drained_s:.0f}s, lifecycle lag peaked at "
        f"{lag.max_lag_s:.0f}s against a stale window of {STALE_AFTER_S:g}s"
    )
    assert Counter(Status.Name(o.status) for o in orders) == {OrderStatus.DELIVERED: ORDERS}
    assert lag.max_lag_s > 5 * STALE_AFTER_S, "no backlog built up: the test proves nothing"
    redriven = [e for e in log_events(monitor, event="stale_redrive") if e["order_id"] in order_ids]
    assert redriven == [], f"{len(redriven)} orders that were only queued were re-driven"
    assert services.stock(product) == 0
