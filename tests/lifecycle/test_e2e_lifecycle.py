"""End-to-end: real worker and monitor processes, both services, Redis and PostgreSQL.

Step delays are 0 here; the monitor runs with a long grace so it never steps in.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis

from services.common.config import Settings
from services.common.lifecycle.status import OrderStatus
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE, RUN_STEP_TASK, make_sender
from tests.lifecycle.stack import (
    FULL_PATH,
    Services,
    Status,
    assert_every_order_delivered,
    log_events,
    purge_broker,
    read_log,
    status_path,
    wait_started,
)
from tests.support import Process, wait_until

QUIET_MONITOR = {"FULFILLMENT_STALE_AFTER_S": "60", "FULFILLMENT_SWEEP_INTERVAL_S": "1"}

# Startup of the processes counts against the first test of the module.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# The path of an order whose reservation came up short.
SHORT_PATH = [OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.FAILED]


@dataclass
class Lifecycle:
    services: Services
    worker: Process
    monitor: Process


@pytest.fixture(scope="module")
def lifecycle(services: Services, redis_url: str) -> Iterator[Lifecycle]:
    purge_broker(redis_url)
    worker = services.start_worker(concurrency=2, wait=False)
    monitor = services.start_monitor(wait=False, **QUIET_MONITOR)
    wait_started(worker, monitor)
    yield Lifecycle(services, worker, monitor)
    worker.stop()
    monitor.stop()


def customer(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def test_every_order_walks_the_whole_lifecycle_exactly_once(lifecycle: Lifecycle) -> None:
    services = lifecycle.services
    products = [services.create_product(stock=1000) for _ in range(3)]
    baskets = [[(products[n % 3], 1 + n % 2)] for n in range(200)]
    who = customer("walk")

    services.place_orders(who, baskets)
    orders = services.wait_all_terminal(who, 200, timeout=150)

    assert_every_order_delivered(services, orders, baskets, initial_stock=1000)
    steps = log_events(lifecycle.worker, event="step")
    assert steps and {"order_id", "step", "outcome", "duration_ms"} <= steps[0].keys()


def test_concurrent_orders_never_oversell(lifecycle: Lifecycle) -> None:
    services = lifecycle.services
    product = services.create_product(stock=50)
    who = customer("contention")
    lowest = [50]
    done = threading.Event()

    def watch_stock() -> None:
        while not done.is_set():
            lowest[0] = min(lowest[0], services.stock(product))
            done.wait(0.1)

    watcher = threading.Thread(target=watch_stock, daemon=True)
    watcher.start()
    try:
        services.place_orders(who, [[(product, 1)]] * 150, clients=16)
        orders = services.wait_all_terminal(who, 150, timeout=120)
    finally:
        done.set()
        watcher.join(30)
    assert not watcher.is_alive(), "the stock watcher did not stop"

    outcomes = Counter(Status.Name(o.status) for o in orders)
    assert outcomes == {OrderStatus.DELIVERED: 50, OrderStatus.FAILED: 100}
    for order in orders:
        if order.status == Status.FAILED:
            assert order.status_note.startswith("insufficient stock"), order.status_note
            assert f"product {product} requested 1, available 0" in order.status_note
    assert services.stock(product) == 0
    assert lowest[0] >= 0


def test_partially_available_order_fails_and_reserves_nothing(lifecycle: Lifecycle) -> None:
    services = lifecycle.services
    available = services.create_product(stock=5)
    short = services.create_product(stock=1)
    who = customer("partial")

    order_id = services.place_order(who, [(available, 2), (short, 3)])
    (order,) = services.wait_all_terminal(who, 1, timeout=60)

    assert order.order_id == order_id
    assert order.status == Status.FAILED
    assert order.status_note == (
        f"insufficient stock: product {short} requested 3, available 1"
    )
    assert (services.stock(available), services.stock(short)) == (5, 1)
    assert status_path(services.history(order_id)) == SHORT_PATH


def test_duplicated_step_tasks_change_nothing_twice(lifecycle: Lifecycle, redis_url: str) -> None:
    services = lifecycle.services
    product = services.create_product(stock=30)
    who = customer("duplicates")
    order_ids = services.place_orders(who, [[(product, 1)]] * 40, clients=8)

    # Every step of every order, three more times, from several publishers at once: each
    # races the real task for its step (redelivery after a lost ack looks just like this).
    sender = make_sender(Settings.from_env({"REDIS_URL": redis_url}))
    steps = [OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.PACKAGING, OrderStatus.SHIPPED]
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(
                lambda args: sender.send_task(RUN_STEP_TASK, args=list(args)),
                [(order_id, step) for _ in range(3) for step in steps for order_id in order_ids],
            ))
    finally:
        sender.close()
    orders = services.wait_all_terminal(who, 40, timeout=120)

    counts = Counter(Status.Name(o.status) for o in orders)
    assert counts == {OrderStatus.DELIVERED: 30, OrderStatus.FAILED: 10}
    assert services.stock(product) == 0
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda o: (o.status, status_path(services.history(o.order_id))), orders))
    for status, path in paths:
        expected = FULL_PATH if status == Status.DELIVERED else SHORT_PATH
        assert path == expected
    # Let the leftover duplicates drain so later tests start from an idle worker.
    queue = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: queue.llen(LIFECYCLE_QUEUE) == 0, timeout=60, what="duplicates to drain")
    finally:
        queue.close()


def test_worker_and_monitor_stop_gracefully_on_sigterm(lifecycle: Lifecycle) -> None:
    # Warm shutdown waits for the steps in hand, whose calls may be retried with backoff on
    # a loaded machine; the bound is generous, the exit code is what is checked.
    assert lifecycle.worker.stop(timeout=90) == 0
    assert lifecycle.monitor.stop(timeout=30) == 0
    assert "Warm shutdown" in read_log(lifecycle.worker)
    assert log_events(lifecycle.monitor, event="monitor_stopped")
