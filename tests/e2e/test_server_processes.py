"""`fulfillment serve ... --processes N`: several processes share one port (SO_REUSEPORT)."""

from __future__ import annotations

import json
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.common.config import Settings
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as inv
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2_grpc as inv_grpc
from tests.auth import authorized_channel
from tests.e2e.test_up import _alive, _descendants
from tests.support import Process, free_port, fulfillment_command, wait_healthy, wait_until

pytestmark = pytest.mark.e2e


def test_two_server_processes_share_the_port_and_stop_together(
    service_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    addr = f"127.0.0.1:{free_port()}"
    env = {**service_env, "INVENTORY_ADDR": addr}
    command = fulfillment_command("serve", "inventory", "--processes", "2")
    with Process(command, env, tmp_path / "serve.log") as server:
        wait_healthy(addr, timeout=30)
        wait_until(lambda: len(_descendants(server.pid)) == 2, timeout=30, what="two server processes")
        children = _descendants(server.pid)

        def create(i: int) -> int:
            # A channel per call: new connections are what the kernel spreads over processes.
            with authorized_channel(addr, settings) as channel:
                product = inv_grpc.InventoryServiceStub(channel).CreateProduct(
                    inv.CreateProductRequest(
                        sku=f"multi-{uuid.uuid4().hex[:10]}", name="p", price="1.00", initial_stock=i
                    ),
                    timeout=10,
                )
            return product.stock_level

        with ThreadPoolExecutor(8) as pool:
            assert sorted(pool.map(create, range(40))) == list(range(40))

        records = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
        serving_pids = {r["pid"] for r in records if r.get("msg") == "serving"}
        assert serving_pids == children

        server.signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        wait_until(lambda: not any(_alive(pid) for pid in children), timeout=10, what="children to exit")
