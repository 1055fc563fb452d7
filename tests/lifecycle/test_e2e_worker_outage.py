"""End-to-end: while no worker is alive the monitor fails no order. The worker is frozen
(SIGSTOP) far longer than the stale window with orders in flight; the monitor reports the
stalled lifecycle and waits; once the worker runs again every order is delivered."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter

import pytest

from services.common.lifecycle.status import OrderStatus
from tests.lifecycle.stack import (
    Services,
    Status,
    assert_history_is_a_chain,
    log_events,
    purge_broker,
    wait_started,
)
from tests.support import wait_until

DELAYS = {"FULFILLMENT_STEP_DELAY_MIN_S": "0.5", "FULFILLMENT_STEP_DELAY_MAX_S": "1.0"}
STALE_AFTER_S = 2.0
MONITOR = {
    **DELAYS,
    "FULFILLMENT_STALE_AFTER_S": str(STALE_AFTER_S),
    "FULFILLMENT_SWEEP_INTERVAL_S": "0.5",
    "FULFILLMENT_STALE_RETRIES": "1",
}
OUTAGE_S = 25.0

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_a_worker_outage_longer_than_the_stale_window_delays_orders_and_fails_none(
    services: Services, redis_url: str
) -> None:
    purge_broker(redis_url)
    worker = services.start_worker(concurrency=2, wait=False, **DELAYS)
    monitor = services.start_monitor(wait=False, **MONITOR)
    wait_started(worker, monitor)
    product = services.create_product(stock=100)
    who = f"outage-{uuid.uuid4().hex[:8]}"
    try:
        services.place_orders(who, [[(product, 1)]] * 40)
        wait_until(
            lambda: sum(o.status == Status.PACKAGING for o in services.orders_of(who)) >= 5,
            timeout=60, interval=0.1, what="orders in flight",
        )
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            time.sleep(OUTAGE_S)
            in_flight = [o for o in services.orders_of(who) if o.status != Status.DELIVERED]
            stalled = log_events(monitor, event="lifecycle_stalled")
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
        orders = services.wait_all_terminal(who, 40, timeout=120)
    finally:
        monitor.stop()
        worker.stop()

    assert in_flight, "every order was delivered before the outage: the test proves nothing"
    assert stalled, "the monitor did not say that no worker was alive"
    assert Counter(Status.Name(o.status) for o in orders) == {OrderStatus.DELIVERED: 40}
    assert log_events(monitor, event="stale_fail") == []
    for order in orders:
        assert_history_is_a_chain(order, services.history(order.order_id))
    assert services.stock(product) == 60
