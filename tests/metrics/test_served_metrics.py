"""/metrics of the real processes: `serve --processes 2` answers one aggregate of both
server processes on one address; an empty address listens nowhere."""

from __future__ import annotations

import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import redis
from prometheus_client.multiprocess import MultiProcessCollector

from services.common.config import Settings
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as inv
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2_grpc as inv_grpc
from services.devtools.processes import descendants
from tests.auth import authorized
from tests.metrics.conftest import CUSTOMER_PREFIX
from tests.metrics.scrape import delta, scrape
from tests.orders.integration.clients import Clients, Status
from tests.orders.integration.servers import OrdersServer
from tests.support import (
    BackgroundServer,
    Process,
    free_port,
    fulfillment_command,
    wait_healthy,
    wait_until,
)

pytestmark = pytest.mark.e2e

INVENTORY = "fulfillment.inventory.v1.InventoryService"
CALLS = 40


def _create_products(addr: str, settings: Settings) -> None:
    def create(_: int) -> None:
        # A connection per call (channels share connections unless told not to): new
        # connections are what the kernel spreads over the processes.
        own = grpc.insecure_channel(addr, options=[("grpc.use_local_subchannel_pool", 1)])
        with authorized(own, settings) as channel:
            inv_grpc.InventoryServiceStub(channel).CreateProduct(
                inv.CreateProductRequest(sku=f"mp-{uuid.uuid4().hex[:10]}", name="p", price="1.00"),
                timeout=10,
            )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(CALLS)))


def _handled_ok(samples: object) -> float:
    """CreateProduct OK in one process's merged files."""
    total = 0.0
    for metric in samples:  # type: ignore[attr-defined]
        for sample in metric.samples:
            if sample.name == "grpc_server_handled_total" and sample.labels == {
                "grpc_service": INVENTORY, "grpc_method": "CreateProduct", "grpc_code": "OK",
            }:
                total += sample.value
    return total


def test_two_server_processes_are_scraped_as_one_sum_on_one_address(
    service_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    addr, metrics_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = {**service_env, "INVENTORY_ADDR": addr, "INVENTORY_METRICS_ADDR": metrics_addr}
    url = f"http://{metrics_addr}/metrics"
    command = fulfillment_command("serve", "inventory", "--processes", "2")
    with Process(command, env, tmp_path / "serve.log") as server:
        wait_healthy(addr, timeout=30)
        wait_until(lambda: len(set(descendants(server.pid)) - {server.pid}) == 2, timeout=30)
        children = set(descendants(server.pid)) - {server.pid}
        before = wait_until(lambda: scrape(url), timeout=10, what="the parent's /metrics")
        _create_products(addr, settings)
        after = scrape(url)

        labels = {"grpc_service": INVENTORY, "grpc_method": "CreateProduct"}
        handled = after.value("grpc_server_handled_total", **labels, grpc_code="OK")
        assert handled - before.value("grpc_server_handled_total", **labels, grpc_code="OK") == CALLS
        assert after.value("grpc_server_handling_seconds_count", **labels) == handled
        # Each server process counted its own share into its own files; the scrape is their sum.
        files = Path(os.environ.get("TMPDIR", "/tmp")) / f"fulfillment-inventory-metrics-{server.pid}"
        shares = {
            child: _handled_ok(MultiProcessCollector.merge([str(files / f"counter_{child}.db")]))
            for child in children
        }
        assert all(share > 0 for share in shares.values()), shares
        assert sum(shares.values()) == handled
        # The usual process series, for the whole family of processes.
        assert after.value("fulfillment_part_processes") == 3
        assert after.value("process_resident_memory_bytes") > 0
        assert after.has("process_cpu_seconds_total") and after.has("python_info", **_python_info(after))

        server.signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    assert not files.exists(), "the metrics files go with the parent"


def _python_info(scraped: object) -> dict[str, str]:
    (labels,) = scraped.named("python_info")  # type: ignore[attr-defined]
    return dict(labels)


def _listening_ports(pid: int) -> set[int]:
    """TCP ports the process listens on (its socket inodes against /proc/net/tcp*)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_an_empty_metrics_address_listens_nowhere(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = {**service_env, "INVENTORY_ADDR": f"127.0.0.1:{port}", "INVENTORY_METRICS_ADDR": ""}
    with Process(fulfillment_command("serve", "inventory"), env, tmp_path / "serve.log") as server:
        wait_healthy(f"127.0.0.1:{port}", timeout=30)
        assert _listening_ports(server.pid) == {port}
        assert "metrics_serving" not in server.output()


def test_the_prefork_worker_serves_its_childrens_steps_and_the_queue_length(
    service_env: dict[str, str], clients: Clients, orders_server: OrdersServer,
    inventory_server: BackgroundServer, redis_url: str, tmp_path: Path,
) -> None:
    broker = redis.Redis.from_url(redis_url)
    broker.delete(LIFECYCLE_QUEUE)  # steps other tests left for orders of other databases
    metrics_addr = f"127.0.0.1:{free_port()}"
    env = {
        **service_env, "ORDERS_ADDR": orders_server.addr, "INVENTORY_ADDR": inventory_server.addr,
        "WORKER_METRICS_ADDR": metrics_addr,
    }
    url = f"http://{metrics_addr}/metrics"
    command = fulfillment_command("worker", "--pool", "prefork", "--concurrency", "2")
    try:
        with Process(command, env, tmp_path / "worker.log") as worker:
            wait_until(lambda: "worker_ready" in worker.output(), timeout=60, what="the worker")
            before = scrape(url)
            product = clients.create_product()
            orders = [clients.create_order(f"{CUSTOMER_PREFIX}{uuid.uuid4().hex[:8]}", [(product, 1)])
                      for _ in range(3)]
            wait_until(
                lambda: all(clients.get(o.order_id).status == Status.DELIVERED for o in orders),
                timeout=60, what="the orders to be delivered",
            )
            after = scrape(url)
            queued = broker.llen(LIFECYCLE_QUEUE)

            steps = "fulfillment_step_duration_seconds_count"
            assert delta(before, after, steps, step="PENDING") == 3
            assert after.value("fulfillment_lifecycle_queue_length") == queued
            assert after.value("fulfillment_part_processes") == 3  # the main process and two children
            files = Path(os.environ.get("TMPDIR", "/tmp")) / f"fulfillment-worker-metrics-{worker.pid}"
            written = {p.name for p in files.glob("histogram_*.db")}
            assert len(written) >= 1, "the children write their steps to files the main process merges"
    finally:
        broker.close()
