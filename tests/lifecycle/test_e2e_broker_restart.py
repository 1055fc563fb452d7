"""End-to-end: the broker (a redis-server this test owns, nothing persisted) restarts
while orders are in flight; every order still ends, and stock is conserved."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.lifecycle.stack import (
    HOLDING_STOCK,
    TERMINAL,
    Services,
    assert_history_is_a_chain,
    expected_stock,
    log_events,
    wait_started,
)
from tests.support import Process, free_port, wait_until

DELAYS = {"FULFILLMENT_STEP_DELAY_MIN_S": "0.5", "FULFILLMENT_STEP_DELAY_MAX_S": "1.0"}
MONITOR = {
    **DELAYS,
    "FULFILLMENT_STALE_AFTER_S": "2",
    "FULFILLMENT_SWEEP_INTERVAL_S": "0.5",
    "FULFILLMENT_STALE_RETRIES": "2",
}

pytestmark = pytest.mark.timeout(300)


class PrivateRedis:
    """A throwaway redis-server on its own port that keeps nothing across restarts."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        args = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
        ]
        log = self.log_dir / f"redis-{self.port}-{uuid.uuid4().hex[:6]}.log"
        self.process = Process(args, {"PATH": "/usr/bin:/bin:/usr/local/bin"}, log)
        try:
            wait_until(self._answers, timeout=20, what="redis-server to answer")
        except BaseException:
            self.stop()
            raise
        return self

    def _answers(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@pytest.fixture(scope="module")
def broker(lifecycle_logs: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(lifecycle_logs)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(
    broker: PrivateRedis, lifecycle_env: dict[str, str], lifecycle_logs: Path
) -> Iterator[tuple[Services, Process]]:
    services = Services({**lifecycle_env, "REDIS_URL": broker.url}, lifecycle_logs, "restart-")
    try:
        services.start()
        worker = services.start_worker(concurrency=2, wait=False, **DELAYS)
        monitor = services.start_monitor(wait=False, **MONITOR)
        wait_started(worker, monitor)
        yield services, monitor
    finally:
        services.stop()


def test_broker_restart_mid_run_loses_no_order_and_no_stock(
    broker: PrivateRedis, stack: tuple[Services, Process]
) -> None:
    services, monitor = stack
    initial = {services.create_product(stock=30): 30 for _ in range(3)}
    products = list(initial)
    rng = random.Random(7)
    baskets = [
        [(p, rng.randint(1, 2)) for p in rng.sample(products, rng.randint(1, 2))]
        for _ in range(60)
    ]
    who = f"restart-{uuid.uuid4().hex[:8]}"
    services.place_orders(who, baskets)
    wait_until(
        lambda: sum(o.status in HOLDING_STOCK for o in services.orders_of(who)) >= 10,
        timeout=60, interval=0.1, what="orders in flight past the reservation",
    )
    assert not all(o.status in TERMINAL for o in services.orders_of(who))

    broker.stop()  # every queued and countdown task is gone with it
    broker.start()
    orders = services.wait_all_terminal(who, 60, timeout=120)

    assert {p: services.stock(p) for p in products} == expected_stock(initial, orders)
    for order in orders:
        assert_history_is_a_chain(order, services.history(order.order_id))
    assert log_events(monitor, event="stale_redrive"), "the monitor re-drove nothing"
