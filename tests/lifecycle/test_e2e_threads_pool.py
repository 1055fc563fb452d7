"""End-to-end on the worker's threads pool (the throughput configuration the benchmarks
use), with step delays above 0 so that every step goes through the broker as a countdown
task published from one of the pool's threads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.common.lifecycle.status import OrderStatus
from tests.lifecycle.stack import (
    FULL_PATH,
    Services,
    assert_every_order_delivered,
    log_events,
    purge_broker,
    wait_started,
)
from tests.support import Process

SHORT_STEPS = {"FULFILLMENT_STEP_DELAY_MIN_S": "0.02", "FULFILLMENT_STEP_DELAY_MAX_S": "0.05"}

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def threads_worker(services: Services, redis_url: str) -> Iterator[Process]:
    purge_broker(redis_url)
    worker = services.spawn(
        "worker-threads", ["worker", "--pool", "threads", "--concurrency", "8"], **SHORT_STEPS
    )
    wait_started(worker)
    yield worker
    worker.stop()


def test_the_threads_pool_walks_every_order_through_published_steps(
    services: Services, threads_worker: Process
) -> None:
    products = [services.create_product(stock=500) for _ in range(3)]
    baskets = [[(products[n % 3], 1 + n % 2)] for n in range(60)]
    who = f"threads-{uuid.uuid4().hex[:8]}"

    services.place_orders(who, baskets)
    orders = services.wait_all_terminal(who, 60, timeout=120)

    assert_every_order_delivered(services, orders, baskets, initial_stock=500)
    # Each step ran in a task of its own, scheduled with its delay, none inline.
    advanced = [e for e in log_events(threads_worker, event="step") if e["outcome"] == "advanced"]
    assert len(advanced) == 60 * (len(FULL_PATH) - 1)
    assert all(e.get("next_delay_s", 0) > 0 for e in advanced if e["status"] != OrderStatus.DELIVERED)
