"""End-to-end with step delays of about a second: cancels caught mid-flight, and a worker
killed with kill -9 while 100 orders are in flight."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest

from services.common.lifecycle.status import OrderStatus
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.lifecycle.stack import (
    HOLDING_STOCK,
    TERMINAL,
    Services,
    Status,
    assert_history_is_a_chain,
    expected_stock,
    kill_group,
    log_events,
    purge_broker,
    status_path,
    wait_started,
)
from tests.support import Process, wait_until

DELAYS = {"FULFILLMENT_STEP_DELAY_MIN_S": "0.8", "FULFILLMENT_STEP_DELAY_MAX_S": "1.5"}
EAGER_MONITOR = {
    **DELAYS,
    "FULFILLMENT_STALE_AFTER_S": "2",
    "FULFILLMENT_SWEEP_INTERVAL_S": "0.5",
    "FULFILLMENT_STALE_RETRIES": "2",
}

# Startup of the processes counts against the first test of the module.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@dataclass
class Lifecycle:
    services: Services
    monitor: Process
    workers: list[Process] = field(default_factory=list)

    @property
    def worker(self) -> Process:
        return self.workers[-1]


@pytest.fixture(scope="module")
def lifecycle(services: Services, redis_url: str) -> Iterator[Lifecycle]:
    purge_broker(redis_url)
    running = Lifecycle(services, services.start_monitor(wait=False, **EAGER_MONITOR))
    running.workers.append(services.start_worker(concurrency=2, wait=False, **DELAYS))
    wait_started(running.monitor, running.worker)
    yield running
    for process in [*running.workers, running.monitor]:
        process.stop()
    purge_broker(redis_url)


def watch_until(services: Services, order_id: str, status: int) -> orders_pb2.Order:
    """Follow the order's changes (WatchOrder) until it reaches `status`."""
    stream = services.orders.WatchOrder(orders_pb2.WatchOrderRequest(order_id=order_id), timeout=60)
    try:
        for order in stream:
            if order.status == status:
                return order
            assert order.status not in TERMINAL, f"order ended {Status.Name(order.status)}"
    finally:
        stream.cancel()
    raise AssertionError(f"watch of {order_id} ended before {Status.Name(status)}")


def wait_for_step(lifecycle: Lifecycle, order_id: str, step: str) -> dict:
    """The worker's log line for `step` of the order: that step has run to its end."""
    return wait_until(
        lambda: next(
            (
                e for e in log_events(lifecycle.worker, event="step")
                if e["order_id"] == order_id and e["step"] == step
            ),
            None,
        ),
        timeout=60, what=f"the {step} step of {order_id}",
    )


@pytest.mark.parametrize("caught_in", [OrderStatus.PROCESSING, OrderStatus.PACKAGING])
def test_cancel_returns_reserved_stock(lifecycle: Lifecycle, caught_in: str) -> None:
    services = lifecycle.services
    first, second = services.create_product(stock=10), services.create_product(stock=4)
    order_id = services.place_order(f"cancel-{uuid.uuid4().hex[:8]}", [(first, 3), (second, 1)])

    watch_until(services, order_id, Status.Value(caught_in))
    canceled = services.orders.CancelOrder(
        orders_pb2.CancelOrderRequest(order_id=order_id, reason="changed my mind"), timeout=10
    )

    assert canceled.status == Status.CANCELED
    # The step that was due next still runs (and finds the order canceled); after it the
    # stock is back where it started.
    wait_for_step(lifecycle, order_id, caught_in)
    assert (services.stock(first), services.stock(second)) == (10, 4)
    assert status_path(services.history(order_id))[-2:] == [caught_in, OrderStatus.CANCELED]


def test_cancel_after_shipping_is_refused(lifecycle: Lifecycle) -> None:
    services = lifecycle.services
    product = services.create_product(stock=10)
    order_id = services.place_order(f"late-{uuid.uuid4().hex[:8]}", [(product, 2)])

    watch_until(services, order_id, Status.SHIPPED)
    with pytest.raises(grpc.RpcError) as refused:
        services.orders.CancelOrder(orders_pb2.CancelOrderRequest(order_id=order_id), timeout=10)

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    watch_until(services, order_id, Status.DELIVERED)
    assert services.stock(product) == 8


def test_killed_worker_loses_no_order_and_no_stock(lifecycle: Lifecycle) -> None:
    services = lifecycle.services
    initial = {services.create_product(stock=40): 40 for _ in range(3)}
    products = list(initial)
    rng = random.Random(4)
    baskets = [
        [(p, rng.randint(1, 2)) for p in rng.sample(products, rng.randint(1, 2))]
        for _ in range(100)
    ]
    who = f"crash-{uuid.uuid4().hex[:8]}"
    services.place_orders(who, baskets)
    wait_until(
        lambda: sum(o.status in HOLDING_STOCK for o in services.orders_of(who)) >= 20,
        timeout=60, interval=0.1, what="orders in flight past the reservation",
    )
    assert not all(o.status in TERMINAL for o in services.orders_of(who))

    kill_group(lifecycle.worker)
    lifecycle.workers.append(services.start_worker(concurrency=2, **DELAYS))
    orders = services.wait_all_terminal(who, 100, timeout=120)

    assert {p: services.stock(p) for p in products} == expected_stock(initial, orders)
    for order in orders:
        assert_history_is_a_chain(order, services.history(order.order_id))
    assert log_events(lifecycle.monitor, event="stale_redrive"), "the monitor re-drove nothing"
