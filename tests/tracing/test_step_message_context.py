"""Step messages carry the trace they belong to, set when they are published: the orders
service's batched first steps (raw messages pushed in one LPUSH, past Celery) and the
steps the worker and the monitor publish through Celery; with tracing off, neither does."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common import tracing
from services.common.config import Settings
from services.common.lifecycle.status import OrderStatus
from services.common.lifecycle.step_publisher import CeleryStepPublisher
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE, make_sender
from services.devtools.stores import claim_redis_db
from services.orders.adapters.step_publisher import BatchedFirstStepPublisher
from tests.conftest import REDIS_BASE

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_url() -> Iterator[str]:
    url, release = claim_redis_db(REDIS_BASE)
    try:
        yield url
    finally:
        release()


def queued_headers(broker_url: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(broker_url)
    try:
        return [json.loads(raw)["headers"] for raw in client.lrange(LIFECYCLE_QUEUE, 0, -1)]
    finally:
        client.close()


def parent_in(headers: dict[str, Any]) -> tuple[str, str] | None:
    """The trace id and parent span id a message's traceparent header names."""
    if "traceparent" not in headers:
        return None
    _version, trace_id, span_id, _flags = headers["traceparent"].split("-")
    return trace_id, span_id


async def publish_first_steps(broker_url: str, count: int) -> None:
    publisher = BatchedFirstStepPublisher(Settings.from_env({"REDIS_URL": broker_url}))
    try:
        await publisher.publish_first_steps([uuid.uuid4() for _ in range(count)])
    finally:
        await publisher.close()


def test_each_batched_first_step_carries_the_creating_calls_trace(
    broker_url: str, spans: InMemorySpanExporter
) -> None:
    with tracing.span("CreateOrder"):
        asyncio.run(publish_first_steps(broker_url, 2))
    call, publish = sorted(spans.get_finished_spans(), key=lambda s: s.name)
    assert call.name == "CreateOrder" and publish.kind is SpanKind.PRODUCER
    assert call.context is not None and publish.context is not None and publish.parent is not None
    assert publish.parent.span_id == call.context.span_id
    expected = (f"{publish.context.trace_id:032x}", f"{publish.context.span_id:016x}")
    assert [parent_in(h) for h in queued_headers(broker_url)] == [expected, expected]


def test_without_tracing_first_steps_carry_no_trace_context(broker_url: str) -> None:
    asyncio.run(publish_first_steps(broker_url, 1))
    (headers,) = queued_headers(broker_url)
    assert "traceparent" not in headers


def test_a_step_published_through_celery_carries_the_current_trace(
    broker_url: str, spans: InMemorySpanExporter
) -> None:
    sender = make_sender(Settings.from_env({"REDIS_URL": broker_url}))
    try:
        with tracing.span("stale_order") as redrive:
            CeleryStepPublisher(sender).publish_step(str(uuid.uuid4()), OrderStatus.PROCESSING)
        context = redrive.get_span_context()  # type: ignore[attr-defined]
    finally:
        sender.close()
    (headers,) = queued_headers(broker_url)
    assert parent_in(headers) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")


def test_the_worker_publishes_its_next_step_in_a_producer_span_that_ends(
    broker_url: str, spans: InMemorySpanExporter
) -> None:
    """Celery's instrumentation, as the worker runs it: a producer span per published step,
    child of the step, its context in the message; ended when the publish returns, and the
    step's span current again (a publish span left open would swallow every later span)."""
    from opentelemetry import trace

    from services.lifecycle_worker.celery_app import create_worker_app

    app = create_worker_app(Settings.from_env({"REDIS_URL": broker_url}))
    tracing.instrument_celery_worker()
    try:
        with tracing.span("step PACKAGING") as step:
            CeleryStepPublisher(app).publish_step(str(uuid.uuid4()), OrderStatus.SHIPPED, delay_s=5)
            assert trace.get_current_span() is step
    finally:
        app.close()
    finished = {s.name: s for s in spans.get_finished_spans()}
    publish = finished["apply_async/fulfillment.lifecycle.run_step"]
    assert publish.kind is SpanKind.PRODUCER and publish.parent is not None and publish.context is not None
    assert publish.parent.span_id == step.get_span_context().span_id  # type: ignore[attr-defined]
    (headers,) = queued_headers(broker_url)
    assert parent_in(headers) == (f"{publish.context.trace_id:032x}", f"{publish.context.span_id:016x}")

