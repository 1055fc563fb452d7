"""End-to-end: two monitors re-drive stale orders, then fail them and release their stock,
and never handle one order twice; with no worker alive they fail nothing.

A step is lost for good here when a worker takes it but cannot run it: the "broken"
worker dials the inventory's port for the orders service, so every call it makes to the
orders service answers UNIMPLEMENTED and its step tasks fail. It is alive and consuming,
so the re-drives are taken and demonstrably do not help."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from services.common.lifecycle.status import OrderStatus
from tests.lifecycle.stack import (
    Services,
    Status,
    kill_group,
    log_events,
    purge_broker,
    status_path,
    wait_started,
)
from tests.support import Process, wait_until

RETRIES = 2
MONITOR = {
    "FULFILLMENT_STALE_AFTER_S": "0.5",
    "FULFILLMENT_SWEEP_INTERVAL_S": "0.3",
    "FULFILLMENT_STALE_RETRIES": str(RETRIES),
}
SLOW_STEPS = {"FULFILLMENT_STEP_DELAY_MIN_S": "3", "FULFILLMENT_STEP_DELAY_MAX_S": "3"}

# Startup of the processes counts against the first test of the module.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@dataclass
class Monitors:
    services: Services
    monitors: tuple[Process, Process]

    def handled(self, order_ids: set[str]) -> tuple[Counter, Counter]:
        """(re-drives per (order, attempt), failures per order) across both monitors."""
        redrives = Counter(
            (e["order_id"], e["attempt"])
            for e in log_events(*self.monitors, event="stale_redrive")
            if e["order_id"] in order_ids and e["outcome"] == "published"
        )
        failures = Counter(
            e["order_id"]
            for e in log_events(*self.monitors, event="stale_fail")
            if e["order_id"] in order_ids and e["outcome"] == "failed"
        )
        return redrives, failures


@pytest.fixture(scope="module")
def monitors(services: Services, redis_url: str) -> Iterator[Monitors]:
    purge_broker(redis_url)
    pair = (services.start_monitor(wait=False, **MONITOR), services.start_monitor(wait=False, **MONITOR))
    wait_started(*pair)
    yield Monitors(services, pair)
    for monitor in pair:
        monitor.stop()
    purge_broker(redis_url)


def assert_redriven_then_failed_once(monitors: Monitors, order_ids: set[str]) -> None:
    redrives, failures = monitors.handled(order_ids)
    expected = {(o, attempt) for o in order_ids for attempt in range(1, RETRIES + 1)}
    assert set(redrives) == expected
    assert set(redrives.values()) == {1}, "an order's step was re-driven twice"
    assert failures == Counter({o: 1 for o in order_ids}), "an order was failed twice"


def start_broken_worker(services: Services) -> Process:
    return services.start_worker(
        concurrency=2, ORDERS_ADDR=services.env["INVENTORY_ADDR"], **SLOW_STEPS
    )


def test_stale_orders_are_redriven_then_failed_with_stock_released(
    monitors: Monitors, redis_url: str
) -> None:
    services = monitors.services
    product = services.create_product(stock=30)
    who = f"stranded-{uuid.uuid4().hex[:8]}"
    worker = services.start_worker(concurrency=2, **SLOW_STEPS)
    order_ids = set(services.place_orders(who, [[(product, 2)]] * 6, clients=6))
    wait_until(
        lambda: all(o.status == Status.PACKAGING for o in services.orders_of(who)),
        timeout=60, interval=0.1, what="every order to hold its stock",
    )
    assert services.stock(product) == 30 - 12

    kill_group(worker)  # its countdown tasks die with it: the orders are stranded
    worker.stop()
    broken = start_broken_worker(services)
    try:
        orders = services.wait_all_terminal(who, 6, timeout=90)
    finally:
        broken.stop()

    for order in orders:
        assert order.status == Status.FAILED
        assert order.status_note == f"stale: step PACKAGING overdue after {RETRIES} re-drives"
        assert status_path(services.history(order.order_id)) == [
            OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.PACKAGING, OrderStatus.FAILED
        ]
    assert services.stock(product) == 30
    assert_redriven_then_failed_once(monitors, order_ids)


def test_two_monitors_never_handle_an_order_twice(monitors: Monitors) -> None:
    services = monitors.services
    product = services.create_product(stock=100)
    who = f"unrunnable-{uuid.uuid4().hex[:8]}"

    # Every step is taken and lost, the first ones and every re-drive.
    broken = start_broken_worker(services)
    try:
        order_ids = set(services.place_orders(who, [[(product, 1)]] * 60))
        orders = services.wait_all_terminal(who, 60, timeout=90)
    finally:
        broken.stop()

    assert {o.status for o in orders} == {Status.FAILED}
    for order in orders:
        assert status_path(services.history(order.order_id)) == [OrderStatus.PENDING, OrderStatus.FAILED]
    assert services.stock(product) == 100
    assert_redriven_then_failed_once(monitors, order_ids)


def test_with_no_worker_alive_monitors_fail_nothing_and_the_orders_wait(
    monitors: Monitors, redis_url: str
) -> None:
    services = monitors.services
    product = services.create_product(stock=100)
    who = f"waiting-{uuid.uuid4().hex[:8]}"
    order_ids = set(services.place_orders(who, [[(product, 1)]] * 20))

    # Many stale windows pass with no worker: nothing is re-driven, nothing failed.
    wait_until(
        lambda: len(log_events(*monitors.monitors, event="lifecycle_stalled")) >= 10,
        timeout=30, what="the monitors to report the stalled lifecycle a few times",
    )
    assert {o.status for o in services.orders_of(who)} == {Status.PENDING}
    assert monitors.handled(order_ids) == (Counter(), Counter())

    worker = services.start_worker(concurrency=2)
    try:
        orders = services.wait_all_terminal(who, 20, timeout=90)
    finally:
        worker.stop()
    assert {o.status for o in orders} == {Status.DELIVERED}
    assert monitors.handled(order_ids) == (Counter(), Counter())
