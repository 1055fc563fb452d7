"""The monitor traces what it does with each stale order: one span per order (order_id,
action), a trace of its own, and a re-drive publishes its step inside it, so the message
carries that span's context."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common.lifecycle.ports import OrderItem, StaleOrder
from services.common.lifecycle.status import OrderStatus
from services.common.tracing import inject_trace_context
from services.stale_monitor.service import MonitorDependencies, SweepPolicy, sweep_stale_orders
from tests.lifecycle.fakes import FakeLifecycle, FakeOrders, FakePublisher, FakeReservations

pytestmark = pytest.mark.unit

POLICY = SweepPolicy(stale_after_s=60.0, lease_s=4.0, retries=2, batch_limit=3)


@dataclass
class ContextRecordingPublisher(FakePublisher):
    """Records the trace context a real publisher would put into each message's headers."""

    contexts: list[dict[str, str]] = field(default_factory=list)

    def publish_step(
        self, order_id: str, status: OrderStatus, delay_s: float = 0.0, note: str = ""
    ) -> None:
        headers: dict[str, str] = {}
        inject_trace_context(headers)
        self.contexts.append(headers)
        super().publish_step(order_id, status, delay_s, note)


def test_each_stale_order_is_a_span_and_a_redrive_carries_it(spans: InMemorySpanExporter) -> None:
    orders, publisher = FakeOrders(), ContextRecordingPublisher()
    reservations = FakeReservations(stock={7: 10})
    orders.add("late", [OrderItem(7, 1)], status=OrderStatus.PACKAGING)
    orders.add("lost", [OrderItem(7, 1)], status=OrderStatus.PACKAGING)
    orders.stale_batches = [
        [StaleOrder(orders.get_order("late"), 1), StaleOrder(orders.get_order("lost"), 3)]
    ]

    sweep_stale_orders(MonitorDependencies(orders, reservations, publisher, FakeLifecycle()), POLICY)

    by_order = {s.attributes["order_id"]: s for s in spans.get_finished_spans() if s.attributes}
    assert {o: s.attributes["action"] for o, s in by_order.items()} == {"late": "redriven", "lost": "failed"}
    assert all(s.name == "stale_order" and s.parent is None for s in by_order.values())
    assert by_order["late"].attributes["step"] == OrderStatus.PACKAGING.value
    redrive = by_order["late"].context
    assert redrive is not None and by_order["lost"].context is not None
    assert redrive.trace_id != by_order["lost"].context.trace_id
    (headers,) = publisher.contexts
    assert headers["traceparent"].split("-")[1:3] == [f"{redrive.trace_id:032x}", f"{redrive.span_id:016x}"]
