"""End-to-end harness: the real services, worker and monitor as subprocesses, and probes.

Every process is a `tests.support.Process` (own session, always killed); every wait is a
bounded wait on a condition.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import redis

from services.common.config import Settings
from services.common.lifecycle.status import NORMAL_PATH, OrderStatus
from services.common.pagination import every_page
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2 as inventory_pb2,
)
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2_grpc as inventory_grpc,
)
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2_grpc as orders_grpc
from services.devtools.stores import REDIS_LOCK_KEY
from tests.auth import authorized_channel
from tests.support import Process, free_port, fulfillment_command, wait_healthy, wait_until

Status = orders_pb2.Order.Status
TERMINAL = {Status.DELIVERED, Status.CANCELED, Status.FAILED}
HOLDING_STOCK = {Status.PACKAGING, Status.SHIPPED, Status.DELIVERED}
FULL_PATH = list(NORMAL_PATH)
STARTUP_TIMEOUT_S = 60.0


def purge_broker(redis_url: str) -> None:
    """Drop queued and unacknowledged step tasks left by earlier processes.

    Kombu's own bookkeeping (`_kombu.*`: exchange bindings) and the test-run lock stay, so
    senders that already declared the queue keep delivering to it.
    """
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter():
            name = key.decode(errors="replace")
            if not name.startswith(("_kombu.", REDIS_LOCK_KEY)):
                client.delete(key)
    finally:
        client.close()


class Services:
    """`fulfillment serve inventory` and `fulfillment serve orders` on free loopback ports,
    probed through their public APIs as an admin (with a token signed by the key in `env`)."""

    def __init__(self, env: dict[str, str], log_dir: Path, tag: str = "") -> None:
        self.env = dict(env)
        self.env["INVENTORY_ADDR"] = f"127.0.0.1:{free_port()}"
        self.env["ORDERS_ADDR"] = f"127.0.0.1:{free_port()}"
        self.settings = Settings.from_env(self.env)
        self.log_dir = log_dir
        self.tag = tag
        self.processes: list[Process] = []
        self.channels: list[grpc.Channel] = []

    def start(self) -> Services:
        """Start both servers and wait until they serve; on failure stop what was started."""
        try:
            for name in ("inventory", "orders"):
                self.processes.append(
                    Process(fulfillment_command("serve", name), self.env, self._log(name))
                )
            wait_healthy(self.env["INVENTORY_ADDR"], timeout=STARTUP_TIMEOUT_S)
            wait_healthy(self.env["ORDERS_ADDR"], timeout=STARTUP_TIMEOUT_S)
            self.inventory = inventory_grpc.InventoryServiceStub(self.channel("INVENTORY_ADDR"))
            self.orders = orders_grpc.OrderServiceStub(self.channel("ORDERS_ADDR"))
        except BaseException:
            self.stop()
            raise
        return self

    def channel(self, addr_var: str) -> grpc.Channel:
        channel = authorized_channel(self.env[addr_var], self.settings)
        self.channels.append(channel)
        return channel

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{self.tag}{name}-{uuid.uuid4().hex[:6]}.log"

    def spawn(self, name: str, args: Sequence[str], **overrides: str) -> Process:
        env = {**self.env, **overrides}
        process = Process(fulfillment_command(*args), env, self._log(name))
        self.processes.append(process)
        return process

    def start_worker(self, concurrency: int = 2, wait: bool = True, **overrides: str) -> Process:
        worker = self.spawn("worker", ["worker", "--concurrency", str(concurrency)], **overrides)
        if wait:
            wait_started(worker)
        return worker

    def start_monitor(self, wait: bool = True, **overrides: str) -> Process:
        monitor = self.spawn("monitor", ["monitor"], **overrides)
        if wait:
            wait_started(monitor)
        return monitor

    def stop(self) -> None:
        """Close the channels and stop every process started; a second call does nothing."""
        while self.channels:
            self.channels.pop().close()
        while self.processes:
            self.processes.pop().stop()

    # -- probes through the public API ---------------------------------------------------

    def create_product(self, stock: int) -> int:
        request = inventory_pb2.CreateProductRequest(
            sku=f"lc-{uuid.uuid4()}", name="Lifecycle test product", price="5.00",
            initial_stock=stock,
        )
        return self.inventory.CreateProduct(request, timeout=10).product_id

    def stock(self, product_id: int) -> int:
        request = inventory_pb2.GetStockRequest(product_id=product_id)
        return self.inventory.GetStock(request, timeout=10).stock_level

    def place_order(self, customer: str, items: Sequence[tuple[int, int]]) -> str:
        request = orders_pb2.CreateOrderRequest(
            customer_name=customer,
            items=[orders_pb2.CreateOrderItem(product_id=p, quantity=q) for p, q in items],
        )
        return self.orders.CreateOrder(request, timeout=15).order_id

    def place_orders(
        self, customer: str, baskets: Sequence[Sequence[tuple[int, int]]], clients: int = 16
    ) -> list[str]:
        """Each basket becomes an order, sent by `clients` concurrent callers."""
        with ThreadPoolExecutor(clients) as pool:
            return list(pool.map(lambda items: self.place_order(customer, items), baskets))

    def get_order(self, order_id: str) -> orders_pb2.Order:
        return self.orders.GetOrder(orders_pb2.GetOrderRequest(order_id=order_id), timeout=10)

    def orders_of(self, customer: str) -> list[orders_pb2.Order]:
        request = orders_pb2.ListOrdersRequest(customer_name=customer, page_size=1000)
        return [o for page in every_page(self.orders.ListOrders, request, timeout=15) for o in page.orders]

    def history(self, order_id: str) -> list[orders_pb2.HistoryEntry]:
        request = orders_pb2.ListOrderHistoryRequest(order_id=order_id)
        return list(self.orders.ListOrderHistory(request, timeout=10).entries)

    def wait_all_terminal(
        self, customer: str, count: int, timeout: float
    ) -> list[orders_pb2.Order]:
        def settled() -> list[orders_pb2.Order] | None:
            orders = self.orders_of(customer)
            if len(orders) == count and all(o.status in TERMINAL for o in orders):
                return orders
            return None

        try:
            return wait_until(settled, timeout=timeout, interval=0.5, what=f"{customer} settled")
        except TimeoutError:
            counts = Counter(Status.Name(o.status) for o in self.orders_of(customer))
            raise AssertionError(f"orders of {customer} not all terminal: {dict(counts)}") from None


_STARTED = {"worker": '"worker_ready"', "monitor": '"monitor_started"'}


def wait_started(*processes: Process) -> None:
    """Wait until each worker/monitor logged that it is up (or fail with its output)."""
    for process in processes:
        marker = _STARTED[process.args[3]]  # [python, -m, services.cli, <command>, ...]
        wait_until(
            lambda p=process, m=marker: m in read_log(p) or p.popen.poll() is not None,
            timeout=STARTUP_TIMEOUT_S, what=f"{process.args[3:]} to start",
        )
        assert process.popen.poll() is None, read_log(process)[-3000:]


def kill_group(process: Process) -> None:
    """kill -9 the process and every child it started (its whole session)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(15)


def read_log(process: Process) -> str:
    """The process's output so far (also after it was stopped and its log closed)."""
    return process.log_path.read_text(errors="replace")


def log_events(*processes: Process, event: str) -> list[dict]:
    events = []
    for process in processes:
        for line in read_log(process).splitlines():
            if line.startswith("{") and f'"{event}"' in line:
                record = json.loads(line)
                if record.get("msg") == event:
                    events.append(record)
    return events


def assert_every_order_delivered(
    services: Services,
    orders: Sequence[orders_pb2.Order],
    baskets: Sequence[Sequence[tuple[int, int]]],
    initial_stock: int,
) -> None:
    """Every order DELIVERED along the whole path once, and each product's stock down by
    exactly what the baskets took."""
    assert Counter(Status.Name(o.status) for o in orders) == {OrderStatus.DELIVERED: len(baskets)}
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda o: status_path(services.history(o.order_id)), orders))
    assert all(path == FULL_PATH for path in paths), [p for p in paths if p != FULL_PATH][:3]
    taken: Counter[int] = Counter()
    for basket in baskets:
        for product_id, quantity in basket:
            taken[product_id] += quantity
    assert {p: services.stock(p) for p in taken} == {p: initial_stock - taken[p] for p in taken}


def status_path(entries: Sequence[orders_pb2.HistoryEntry]) -> list[str]:
    return [Status.Name(e.to_status) for e in entries]


def assert_history_is_a_chain(order: orders_pb2.Order, entries: Sequence[orders_pb2.HistoryEntry]) -> None:
    """PENDING first, each row starts where the previous ended, no status twice, ends at
    the order's status: no gaps and no duplicated transitions."""
    path = status_path(entries)
    assert path and path[0] == OrderStatus.PENDING, (order.order_id, path)
    for previous, entry in zip(entries, entries[1:], strict=False):
        assert entry.from_status == previous.to_status, (order.order_id, path)
    assert len(set(path)) == len(path), (order.order_id, path)
    assert path[-1] == Status.Name(order.status), (order.order_id, path)
    normal = [s for s in path if s in FULL_PATH]
    assert normal == FULL_PATH[: len(normal)], (order.order_id, path)


def expected_stock(
    initial: dict[int, int], orders: Iterable[orders_pb2.Order]
) -> dict[int, int]:
    """Conservation: initial stock minus what orders that hold stock took."""
    expected = dict(initial)
    for order in orders:
        if order.status in HOLDING_STOCK:
            for item in order.items:
                expected[item.product_id] -= item.quantity
    return expected
