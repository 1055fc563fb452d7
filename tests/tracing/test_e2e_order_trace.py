"""One order, one trace: an order created over HTTP through Envoy with a known traceparent
is walked to DELIVERED by a `fulfillment up` stack that exports to a test OTLP collector,
and the collector holds that trace with spans of the gateway, orders, the worker and the
inventory, all joined (every parent is in the trace, or is the caller's span); the JSON
log lines of orders and the worker about that order carry its trace_id."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.config import Settings
from services.common.lifecycle.status import OrderStatus
from services.devtools.otlp_sink import OtlpSink, ReceivedSpan
from tests.e2e.conftest import Stack, up_stack
from tests.support import private_stores, wait_until

pytestmark = pytest.mark.e2e

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
PARTS = {"fulfillment-gateway", "fulfillment-orders", "fulfillment-worker", "fulfillment-inventory"}


@pytest.fixture(scope="module")
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as running:
        yield running


@pytest.fixture(scope="module")
def traced_stack(
    sink: OtlpSink, service_env: dict[str, str], settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    with private_stores(service_env, "fulfillment_traced") as own_stores:
        env = {
            **own_stores,
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with up_stack(env, settings, Path(tmp_path_factory.mktemp("traced")) / "up.log") as stack:
            assert f"traces                      OTLP/gRPC to {sink.endpoint}" in stack.process.output()
            yield stack


def create_order_with_traceparent(stack: Stack, product_id: str) -> str:
    body = {"customer_name": "Tracy", "items": [{"product_id": product_id, "quantity": 1}]}
    request = urllib.request.Request(
        f"{stack.gateway}/v1/orders", data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json", "traceparent": TRACEPARENT, **stack.authorization()},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        order_id: str = json.loads(response.read())["order_id"]
    return order_id


def unjoined(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    known = {s.span_id for s in spans} | {CALLER_SPAN_ID}
    return [s for s in spans if s.parent_span_id not in known]


def log_lines(up_output: str, part: str) -> list[dict[str, Any]]:
    """The JSON lines `up` relayed from one part (prefixed `   orders | `)."""
    lines = []
    for line in up_output.splitlines():
        name, _, rest = line.partition(" | ")
        if name.strip() == part and rest.startswith("{"):
            lines.append(json.loads(rest))
    return lines


def test_an_order_is_one_trace_from_the_gateway_to_the_inventory(
    traced_stack: Stack, sink: OtlpSink
) -> None:
    status, product = traced_stack.http("POST", "/v1/products", {
        "sku": f"trace-{uuid.uuid4().hex[:10]}", "name": "Traced", "price": "2.00", "initial_stock": 5,
    })
    assert status == 200, product
    order_id = create_order_with_traceparent(traced_stack, str(product["product_id"]))
    wait_until(
        lambda: traced_stack.http("GET", f"/v1/orders/{order_id}")[1]["status"] == OrderStatus.DELIVERED,
        timeout=60, interval=0.1, what=f"order {order_id} to be delivered",
    )

    def whole_trace() -> list[ReceivedSpan] | None:
        spans = sink.spans(TRACE_ID)
        complete = {s.service for s in spans} >= PARTS and not unjoined(spans)
        return spans if complete else None

    try:
        # Envoy exports its spans every 5 s; the services every 100 ms here.
        spans = wait_until(whole_trace, timeout=30, interval=0.2, what="the whole trace")
    except TimeoutError:
        spans = sink.spans(TRACE_ID)
        summary = sorted((s.service, s.name, s.span_id, s.parent_span_id) for s in spans)
        pytest.fail(f"trace incomplete or not joined; unjoined: {unjoined(spans)}; all: {summary}")

    (gateway,) = [s for s in spans if s.service == "fulfillment-gateway"]
    assert gateway.parent_span_id == CALLER_SPAN_ID
    by_service: dict[str, set[str]] = {}
    for span in spans:
        by_service.setdefault(span.service, set()).add(span.name)
    assert "/fulfillment.orders.v1.OrderService/CreateOrder" in by_service["fulfillment-orders"]
    assert "/fulfillment.orders.v1.OrderLifecycleService/AdvanceOrder" in by_service["fulfillment-orders"]
    assert "/fulfillment.inventory.v1.ReservationService/ReserveStock" in by_service["fulfillment-inventory"]
    steps = [s for s in spans if s.service == "fulfillment-worker" and s.name.startswith("step ")]
    assert steps and all(s.attributes["order_id"] == order_id for s in steps)
    assert {s.attributes["step"] for s in steps} >= {OrderStatus.PENDING.value}
    # A statement of the reservation, under the inventory's ReserveStock span.
    inventory_ids = {s.span_id for s in spans if s.service == "fulfillment-inventory"}
    statements = [s for s in spans if s.parent_span_id in inventory_ids and "db.system" in s.attributes]
    assert statements and all(s.attributes["db.system"] == "postgresql" for s in statements)

    output = traced_stack.process.output()
    for part in ("orders", "worker"):
        about_order = [line for line in log_lines(output, part) if line.get("order_id") == order_id]
        assert about_order, f"no {part} line about {order_id}"
        assert all(line.get("trace_id") == TRACE_ID for line in about_order), about_order
        assert all(len(line["span_id"]) == 16 for line in about_order)
