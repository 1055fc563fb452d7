"""End-to-end: the broker (a redis-server this test owns, nothing persisted) restarts
while orders are in flight; every order still ends, and stock is conserved. Restarted
again and again under load, the worker keeps consuming (kombu's reconnect path is guarded:
services/common/lifecycle/broker_transport.py) and every order is delivered."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.common.lifecycle.status import OrderStatus
from tests.lifecycle.stack import (
    HOLDING_STOCK,
    TERMINAL,
    Services,
    Status,
    assert_history_is_a_chain,
    expected_stock,
    log_events,
    read_log,
    wait_started,
)
from tests.support import Process, free_port, wait_until

DELAYS = {"FULFILLMENT_STEP_DELAY_MIN_S": "0.5", "FULFILLMENT_STEP_DELAY_MAX_S": "1.0"}
MONITOR = {
    **DELAYS,
    "FULFILLMENT_STALE_AFTER_S": "2",
    "FULFILLMENT_SWEEP_INTERVAL_S": "0.5",
    # A step lost in one restart, re-driven, may be lost again in the next.
    "FULFILLMENT_STALE_RETRIES": "5",
}
RESTARTS = 5

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


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


def test_repeated_broker_restarts_under_load_the_worker_keeps_consuming_and_every_order_is_delivered(
    broker: PrivateRedis, stack: tuple[Services, Process]
) -> None:
    services, _ = stack
    worker = next(p for p in services.processes if p.args[3] == "worker")
    product = services.create_product(stock=10_000)
    who = f"restarts-{uuid.uuid4().hex[:8]}"
    placed: list[str] = []
    stop = threading.Event()

    def load() -> None:  # about 20 orders a second: what two worker slots keep up with
        while not stop.wait(0.4):
            placed.extend(services.place_orders(who, [[(product, 1)]] * 8, clients=8))

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        for _ in range(RESTARTS):
            time.sleep(1.5)
            broker.stop()
            time.sleep(0.3)
            broker.start()
    finally:
        stop.set()
        loader.join(60)
    assert not loader.is_alive()

    # The same worker process, still consuming: new orders after the last restart move.
    assert worker.popen.poll() is None, read_log(worker)[-3000:]
    late = services.place_orders(who, [[(product, 1)]] * 10)
    orders = services.wait_all_terminal(who, len(placed) + len(late), timeout=180)

    assert Counter(Status.Name(o.status) for o in orders) == {OrderStatus.DELIVERED: len(orders)}
    assert services.stock(product) == 10_000 - len(orders)
    assert "Unrecoverable error" not in read_log(worker)
    for order in orders[:50]:
        assert_history_is_a_chain(order, services.history(order.order_id))
