"""End-to-end: the PostgreSQL server (a private one this test owns) is restarted, fast and
immediate, while clients create orders. No acknowledged order is lost, callers only ever
see UNAVAILABLE, and the services answer again without being restarted themselves."""

from __future__ import annotations

import contextlib
import random
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2 as inventory_pb2,
)
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.lifecycle.stack import (
    TERMINAL,
    Services,
    Status,
    assert_history_is_a_chain,
    expected_stock,
    log_events,
    purge_broker,
    wait_started,
)
from tests.private_postgres import PrivatePostgres
from tests.support import REPO_ROOT, Process, fulfillment_command, wait_healthy, wait_until

DELAYS = {"FULFILLMENT_STEP_DELAY_MIN_S": "0.2", "FULFILLMENT_STEP_DELAY_MAX_S": "0.5"}
MONITOR = {
    **DELAYS,
    "FULFILLMENT_STALE_AFTER_S": "2",
    "FULFILLMENT_SWEEP_INTERVAL_S": "0.5",
    "FULFILLMENT_STALE_RETRIES": "2",
}
RESTART_MODES = ("fast", "immediate", "fast", "immediate")
DOWN_S = 1.0  # the server stays stopped this long each time
STEADY_S = 1.0  # load after each recovery, before the next restart
CLIENTS = 12
CLIENT_PAUSE_S = 0.05  # between one client's calls, so the lifecycle keeps up on 2 cores
FAILED_CALL_BACKOFF_S = 0.05  # a caller that got UNAVAILABLE waits a little, as real ones do
CALL_TIMEOUT_S = 15.0
RECOVERY_BOUND_S = 10.0
INITIAL_STOCK = 400

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@dataclass(frozen=True)
class Call:
    """One CreateOrder or GetOrder as its caller saw it (monotonic times)."""

    method: str
    sent: float
    done: float
    order_id: str = ""  # the order created or read
    code: grpc.StatusCode | None = None
    details: str = ""


@dataclass(frozen=True)
class Restart:
    mode: str
    stop_sent: float
    start_returned: float  # pg_ctl start -w returned: the server accepts connections


class OrderLoad:
    """`clients` threads until stopped, each creating an order, then reading one that was
    acknowledged earlier (by any client), every call recorded."""

    def __init__(self, services: Services, customer: str, products: Sequence[int], clients: int) -> None:
        self.services = services
        self.customer = customer
        self.products = list(products)
        self.calls: list[Call] = []  # appended from the client threads (atomic in CPython)
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(seed,), daemon=True) for seed in range(clients)
        ]

    def __enter__(self) -> OrderLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(CALL_TIMEOUT_S + 5)
        assert not any(t.is_alive() for t in self._threads), "a load client did not stop"

    def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        orders = self.services.orders
        while not self._stopping.is_set():
            items = [
                orders_pb2.CreateOrderItem(product_id=p, quantity=rng.randint(1, 3))
                for p in rng.sample(self.products, rng.randint(1, 2))
            ]
            request = orders_pb2.CreateOrderRequest(
                request_id=str(uuid.uuid4()), customer_name=self.customer, items=items
            )
            self._call("CreateOrder", orders.CreateOrder, request)
            acknowledged = self.acknowledged_ids()
            if acknowledged:
                read = orders_pb2.GetOrderRequest(order_id=rng.choice(acknowledged))
                self._call("GetOrder", orders.GetOrder, read)
            self._stopping.wait(CLIENT_PAUSE_S)

    def _call(self, method: str, send: Callable[..., orders_pb2.Order], request: Message) -> None:
        sent = time.monotonic()
        try:
            order = send(request, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            self.calls.append(Call(method, sent, time.monotonic(), code=exc.code(), details=exc.details()))
            self._stopping.wait(FAILED_CALL_BACKOFF_S)
        else:
            self.calls.append(Call(method, sent, time.monotonic(), order_id=order.order_id))

    def acknowledged_ids(self) -> list[str]:
        return [c.order_id for c in list(self.calls) if c.method == "CreateOrder" and c.order_id]

    def first_order_created_after(self, moment: float) -> Call | None:
        return min(
            (c for c in list(self.calls) if c.method == "CreateOrder" and c.order_id and c.done >= moment),
            key=lambda c: c.done, default=None,
        )


@dataclass(frozen=True)
class RestartFigures:
    """What callers saw around one restart: the calls answered from its pg_ctl stop to the
    next restart's."""

    mode: str
    down_s: float  # pg_ctl stop sent -> pg_ctl start returned
    failed_calls: int
    unavailable_s: float  # first failed call answered -> first order acknowledged again
    recovery_s: float | None  # pg_ctl start returned -> first order acknowledged
    failed_after_recovery: int

    @classmethod
    def of(cls, restart: Restart, calls: Sequence[Call], until: float) -> RestartFigures:
        segment = [c for c in calls if restart.stop_sent <= c.done < until]
        failures = [c.done for c in segment if c.code is not None]
        recovered = min(
            (
                c.done for c in segment
                if c.method == "CreateOrder" and c.order_id and c.done >= restart.start_returned
            ),
            default=None,
        )
        return cls(
            mode=restart.mode,
            down_s=restart.start_returned - restart.stop_sent,
            failed_calls=len(failures),
            unavailable_s=recovered - min(failures) if recovered and failures else 0.0,
            recovery_s=None if recovered is None else recovered - restart.start_returned,
            failed_after_recovery=sum(1 for done in failures if recovered and done > recovered),
        )

    def line(self) -> str:
        recovery = "never" if self.recovery_s is None else f"{self.recovery_s:.3f} s"
        return (
            f"{self.mode:9} stop, {self.down_s:.2f} s down: {self.failed_calls} calls UNAVAILABLE "
            f"over {self.unavailable_s:.2f} s; first order {recovery} after pg_ctl start; "
            f"{self.failed_after_recovery} failed after that"
        )


@pytest.fixture(scope="module")
def database(lifecycle_logs: Path) -> Iterator[PrivatePostgres]:
    with PrivatePostgres(lifecycle_logs) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    database: PrivatePostgres, service_env: dict[str, str], redis_url: str, lifecycle_logs: Path
) -> Iterator[Services]:
    env = {**service_env, "DATABASE_URL": database.url("fulfillment"), "REDIS_URL": redis_url}
    subprocess.run(
        fulfillment_command("migrate"), env=env, cwd=REPO_ROOT, check=True, timeout=60,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    purge_broker(redis_url)
    services = Services(env, lifecycle_logs, "pg-restart-")
    try:
        services.start()
        worker = services.spawn(
            "worker", ["worker", "--pool", "threads", "--concurrency", "8"], **DELAYS
        )
        monitor = services.start_monitor(wait=False, **MONITOR)
        wait_started(worker, monitor)
        yield services
    finally:
        services.stop()
        purge_broker(redis_url)


def test_database_restarts_under_load_lose_no_order_and_services_recover(
    database: PrivatePostgres, stack: Services
) -> None:
    services = stack
    pids = {tuple(p.args[3:5]): p.pid for p in services.processes}
    initial = {services.create_product(stock=INITIAL_STOCK): INITIAL_STOCK for _ in range(4)}
    who = f"pg-restart-{uuid.uuid4().hex[:8]}"
    restarts: list[Restart] = []

    with OrderLoad(services, who, list(initial), CLIENTS) as load:
        wait_until(lambda: len(load.acknowledged_ids()) >= 20, timeout=30, what="orders before a restart")
        for mode in RESTART_MODES:
            stop_sent = time.monotonic()
            database.stop_server(mode)
            time.sleep(DOWN_S)
            database.start_server()
            restart = Restart(mode, stop_sent, time.monotonic())
            restarts.append(restart)
            with contextlib.suppress(TimeoutError):  # judged below, with the figures
                wait_until(
                    lambda r=restart: load.first_order_created_after(r.start_returned),
                    timeout=RECOVERY_BOUND_S + 5, interval=0.01,
                )
            time.sleep(STEADY_S)
    calls = sorted(load.calls, key=lambda c: c.done)
    acknowledged = load.acknowledged_ids()
    failed = [c for c in calls if c.code is not None]
    ends = [r.stop_sent for r in restarts[1:]] + [calls[-1].done + 1]
    figures = [RestartFigures.of(r, calls, until) for r, until in zip(restarts, ends, strict=True)]
    print(
        f"\nPostgreSQL restarted under load ({CLIENTS} clients): {len(calls)} calls, "
        f"{len(acknowledged)} orders acknowledged, {len(failed)} calls failed "
        f"{dict(Counter(c.method for c in failed))}",
        *(f.line() for f in figures), sep="\n  ",
    )

    assert {c.code for c in failed} <= {grpc.StatusCode.UNAVAILABLE}, Counter(
        (c.method, c.code.name if c.code else "", c.details) for c in failed
    ).most_common(5)
    assert all(f.failed_calls > 0 for f in figures), "a restart no call noticed: the load missed it"
    assert all(f.recovery_s is not None and f.recovery_s <= RECOVERY_BOUND_S for f in figures), figures
    assert all(f.failed_after_recovery == 0 for f in figures), figures
    assert len(set(acknowledged)) == len(acknowledged)

    orders = wait_settled(services, who, set(acknowledged), timeout=90)
    with ThreadPoolExecutor(8) as pool:
        fetched = list(pool.map(services.get_order, acknowledged))
        histories = list(pool.map(lambda o: services.history(o.order_id), orders))
    assert [o.order_id for o in fetched] == acknowledged
    assert all(o.status in TERMINAL for o in fetched)
    for order, history in zip(orders, histories, strict=True):
        assert_history_is_a_chain(order, history)
    stock = {p: services.stock(p) for p in initial}
    assert stock == expected_stock(initial, orders)
    assert all(level >= 0 for level in stock.values()), stock
    print(
        f"  {len(orders) - len(acknowledged)} orders committed by calls that failed; at rest: "
        f"{dict(Counter(Status.Name(o.status) for o in orders))}; stale re-drives: "
        f"{len(log_events(*parts(services, 'monitor'), event='stale_redrive'))}"
    )

    database.stop_server("immediate")
    time.sleep(DOWN_S)
    database.start_server()
    assert_every_path_answers_at_once(services, who, list(initial), orders[0].order_id)
    assert_watch_follows_a_new_order(services, who, list(initial))

    # Answered INTERNAL to anyone, the worker and the monitor included (logged, not raised)
    internal = log_events(*parts(services, "serve"), event="unexpected error")
    assert not internal, [(e["method"], e["exc"][-600:]) for e in internal[:2]]
    assert {tuple(p.args[3:5]): p.pid for p in services.processes} == pids
    assert [p.args[3:5] for p in services.processes if p.popen.poll() is not None] == []
    wait_healthy(services.env["INVENTORY_ADDR"], timeout=10)
    wait_healthy(services.env["ORDERS_ADDR"], timeout=10)


def parts(services: Services, command: str) -> list[Process]:
    """The processes started as `fulfillment <command> ...`."""
    return [p for p in services.processes if p.args[3] == command]


def assert_every_path_answers_at_once(
    services: Services, customer: str, products: list[int], order_id: str
) -> None:
    """After a restart with no client load, the first call on each path succeeds: no
    connection the restart closed while it sat idle in a pool is handed to a caller."""
    answers: dict[str, object] = {}
    calls: dict[str, Callable[[], object]] = {
        "GetStock": lambda: services.stock(products[0]),
        "GetProduct": lambda: services.inventory.GetProduct(
            inventory_pb2.GetProductRequest(product_id=products[0]), timeout=10
        ),
        "ListProducts": lambda: services.inventory.ListProducts(
            inventory_pb2.ListProductsRequest(page_size=5), timeout=10
        ),
        "CreateOrder": lambda: services.place_order(customer, [(products[0], 1)]),
        "GetOrder": lambda: services.get_order(order_id),
        "ListOrderHistory": lambda: services.history(order_id),
        "ListOrders": lambda: services.orders.ListOrders(
            orders_pb2.ListOrdersRequest(customer_name=customer, page_size=5), timeout=10
        ),
    }
    for name, call in calls.items():
        try:
            call()
        except grpc.RpcError as exc:
            answers[name] = f"{exc.code().name}: {exc.details()}"
    assert answers == {}, answers


def wait_settled(
    services: Services, customer: str, acknowledged: set[str], timeout: float
) -> list[orders_pb2.Order]:
    """Every order of `customer` (acknowledged or created by a call that then failed) at
    rest; fails naming the statuses still open."""
    def settled() -> list[orders_pb2.Order] | None:
        orders = services.orders_of(customer)
        at_rest = all(o.status in TERMINAL for o in orders)
        return orders if at_rest and acknowledged <= {o.order_id for o in orders} else None

    try:
        return wait_until(settled, timeout=timeout, interval=0.5, what=f"{customer} settled")
    except TimeoutError:
        orders = services.orders_of(customer)
        missing = acknowledged - {o.order_id for o in orders}
        counts = Counter(Status.Name(o.status) for o in orders)
        raise AssertionError(
            f"not settled: {dict(counts)}; {len(missing)} acknowledged orders missing"
        ) from None


def assert_watch_follows_a_new_order(services: Services, customer: str, products: list[int]) -> None:
    """WatchOrder (PostgreSQL LISTEN, reconnected after the restarts) follows an order
    created now to its end."""
    order_id = services.place_order(customer, [(products[0], 1)])
    stream = services.orders.WatchOrder(orders_pb2.WatchOrderRequest(order_id=order_id), timeout=30)
    seen = [Status.Name(update.status) for update in stream]
    assert seen and seen[-1] in {Status.Name(s) for s in TERMINAL}, seen
    assert seen[-1] == Status.Name(services.get_order(order_id).status)
