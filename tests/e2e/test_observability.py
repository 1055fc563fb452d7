"""A stack with every /metrics endpoint on, after real traffic: each series the dashboard
and the alert rules name is served, and `fulfillment top --once` shows what the endpoints
say."""

from __future__ import annotations

import math
import re
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.common.config import Settings
from services.top.figures import Sample, bucket_quantile, parse_exposition
from tests.deploy.promql import base_name
from tests.deploy.series import SCRAPE_SERIES, named_series
from tests.e2e.conftest import Stack, up_stack
from tests.support import free_port, fulfillment_command, private_stores, wait_until
from tests.top.exposition import screen_rows

pytestmark = pytest.mark.e2e

PARTS = ("inventory", "orders", "worker", "monitor")
ORDER_SERVICE = "fulfillment.orders.v1.OrderService"
TERMINAL = {"DELIVERED", "FAILED", "CANCELED"}


@dataclass
class ObservedStack:
    stack: Stack
    env: dict[str, str]
    metrics: dict[str, str]  # part -> host:port of its /metrics

    def scrape_text(self, part: str) -> str:
        url = (
            f"{self.stack.admin}/stats/prometheus" if part == "envoy"
            else f"http://{self.metrics[part]}/metrics"
        )
        with urllib.request.urlopen(url, timeout=10) as response:
            text: str = response.read().decode()
            return text

    def scrape(self, part: str) -> list[Sample]:
        return parse_exposition(self.scrape_text(part))


def series_in(text: str) -> set[str]:
    """The series names of an exposition, as Prometheus stores them (prometheus_client's
    parser would add _total to a counter such as Envoy's, which Prometheus does not)."""
    return {
        re.split(r"[{\s]", line, maxsplit=1)[0]
        for line in text.splitlines() if line.strip() and not line.startswith("#")
    }


def total(samples: list[Sample], name: str, **match: str) -> float:
    return sum(s.value for s in samples if s.name == name and match.items() <= dict(s.labels).items())


@pytest.fixture(scope="module")
def observed(
    service_env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ObservedStack]:
    metrics = {part: f"127.0.0.1:{free_port()}" for part in PARTS}
    with private_stores(service_env, "fulfillment_observed") as own_stores:
        env = {
            **own_stores,
            "FULFILLMENT_STEP_DELAY_MIN_S": "0",
            "FULFILLMENT_STEP_DELAY_MAX_S": "0.05",
            "FULFILLMENT_SWEEP_INTERVAL_S": "1",
            **{f"{part.upper()}_METRICS_ADDR": addr for part, addr in metrics.items()},
        }
        log = Path(tmp_path_factory.mktemp("observed")) / "up.log"
        with up_stack(env, settings, log) as stack:
            drive_traffic(stack)
            addresses = {"INVENTORY_ADDR": stack.inventory_addr, "ORDERS_ADDR": stack.orders_addr}
            yield ObservedStack(stack, {**env, **addresses}, metrics)


def drive_traffic(stack: Stack) -> None:
    """Orders over HTTP to their ends: three delivered and one short of stock (FAILED), two
    more through a bulk create, and a lookup of an order that does not exist."""
    def product(stock: int) -> str:
        status, body = stack.http("POST", "/v1/products", {
            "sku": f"observe-{uuid.uuid4().hex[:10]}", "name": "Lamp", "description": "d",
            "price": "9.90", "initial_stock": stock,
        })
        assert status == 200, body
        return str(body["product_id"])

    def order_request(pid: str, name: str) -> dict[str, Any]:
        return {"customer_name": name, "items": [{"product_id": pid, "quantity": 1}],
                "request_id": uuid.uuid4().hex}

    scarce, plenty = product(3), product(100)
    order_ids = []
    for i in range(4):
        status, order = stack.http("POST", "/v1/orders", order_request(scarce, f"single-{i}"))
        assert status == 200, order
        order_ids.append(order["order_id"])
    status, results = stack.http(
        "POST", "/v1/orders:bulkCreate", [order_request(plenty, f"bulk-{i}") for i in range(2)]
    )
    assert status == 200, results
    order_ids += [r["order"]["order_id"] for r in results]
    assert stack.http("GET", f"/v1/orders/{uuid.uuid4()}")[0] == 404

    def all_ended() -> bool:
        return all(stack.http("GET", f"/v1/orders/{oid}")[1]["status"] in TERMINAL for oid in order_ids)

    wait_until(all_ended, timeout=60, interval=0.2, what="every order to reach an end")
    statuses = sorted(stack.http("GET", f"/v1/orders/{oid}")[1]["status"] for oid in order_ids)
    assert statuses == ["DELIVERED"] * 5 + ["FAILED"], statuses


def test_every_series_the_dashboard_and_the_alerts_name_is_served(observed: ObservedStack) -> None:
    served: dict[str, set[str]] = {}
    for part in (*PARTS, "envoy"):
        for name in series_in(observed.scrape_text(part)):
            served.setdefault(name, set()).add(part)
            served.setdefault(base_name(name), set()).add(part)
    missing = {
        name: sorted(where) for name, where in named_series().items()
        if name not in SCRAPE_SERIES and name not in served
    }
    assert not missing, f"named by the dashboard or the alert rules, served by no part: {missing}"
    # And where an operator would look for them.
    assert {"worker", "monitor"} <= served["fulfillment_lifecycle_queue_length"]
    assert "envoy" in served["envoy_http_downstream_rq_xx"]


def test_the_monitor_in_the_worker_process_serves_its_series_alone(observed: ObservedStack) -> None:
    """`up` runs the monitor as a thread of the worker's process (tracing off): each
    endpoint still serves only its own part's series, so that no sum over the parts counts
    one twice (the dashboard sums process memory and stale orders over them)."""
    worker = {base_name(n) for n in series_in(observed.scrape_text("worker"))}
    monitor = {base_name(n) for n in series_in(observed.scrape_text("monitor"))}
    assert "fulfillment_stale_orders_total" in monitor
    assert "fulfillment_stale_orders_total" not in worker
    assert {"process_resident_memory_bytes", "fulfillment_step_duration_seconds"} <= worker
    assert not {"process_resident_memory_bytes", "fulfillment_step_duration_seconds"} & monitor
    assert "fulfillment_lifecycle_queue_length" in worker & monitor  # the contract: both


def test_the_traffic_moved_the_series_the_pages_watch(observed: ObservedStack) -> None:
    orders, inventory = observed.scrape("orders"), observed.scrape("inventory")
    assert total(orders, "fulfillment_orders_created_total") == 6
    assert total(orders, "fulfillment_order_transitions_total", to_status="DELIVERED") == 5
    assert total(inventory, "fulfillment_reservations_total", outcome="short") == 1
    assert total(
        orders, "grpc_server_handled_total", grpc_method="GetOrder", grpc_code="NOT_FOUND"
    ) == 1


def test_top_once_shows_the_numbers_the_endpoints_serve(observed: ObservedStack) -> None:
    wait_until(
        lambda: total(observed.scrape("orders"), "fulfillment_orders", status="DELIVERED") >= 5,
        timeout=40, interval=0.5, what="the orders-by-status gauge to count the delivered orders",
    )
    shown = subprocess.run(
        fulfillment_command("top", "--once", "--interval", "1"),
        env={**observed.env, "COLUMNS": "220"}, capture_output=True, text=True, timeout=60, check=False,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    orders, worker = observed.scrape("orders"), observed.scrape("worker")
    rows = screen_rows(shown.stdout)

    states = {row[0]: row[2] for row in rows if row[0] in PARTS}
    assert states == dict.fromkeys(PARTS, "up")
    assert [row[1] for row in rows if row[0] in PARTS] == [observed.metrics[p] for p in PARTS]

    (by_status,) = [row for row in rows if len(row) == 7]  # PENDING ... FAILED
    delivered = int(by_status[4].replace(",", ""))
    assert delivered == total(orders, "fulfillment_orders", status="DELIVERED") >= 5

    (flow,) = [row for row in rows if row[-1].endswith("%")]
    created, intake, _delivered_rate, queue = flow[:4]
    assert int(created) == total(orders, "fulfillment_orders_created_total") == 6
    assert intake == "0.0/s"  # nothing was created between its two readings
    assert int(queue) == total(worker, "fulfillment_lifecycle_queue_length") == 0

    (create,) = [row for row in rows if row[0] == f"{ORDER_SERVICE}/CreateOrder"]
    assert int(create[1]) == total(orders, "grpc_server_handled_total", grpc_method="CreateOrder") == 4
    buckets = {
        float(dict(s.labels)["le"]): s.value for s in orders
        if s.name == "grpc_server_handling_seconds_bucket" and dict(s.labels)["grpc_method"] == "CreateOrder"
    }
    assert buckets[math.inf] == 4
    p99 = bucket_quantile(0.99, buckets)
    assert p99 is not None
    assert create[4] == f"{p99 * 1000:,.1f} ms"
