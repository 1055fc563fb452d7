"""Log lines join traces: inside a span a JSON line carries its trace_id and span_id, as
the trace spells them; outside one, or with tracing off, it carries neither."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common import tracing
from services.common.logs import log_event
from tests.support import JsonLines

pytestmark = pytest.mark.unit


@pytest.fixture
def lines() -> Iterator[JsonLines]:
    handler = JsonLines("worker")
    logger = logging.getLogger("tests.tracing.lines")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def log(event: str, **fields: object) -> None:
    log_event(logging.getLogger("tests.tracing.lines"), event, **fields)


def test_a_line_inside_a_span_carries_its_trace_and_span_ids(
    lines: JsonLines, spans: InMemorySpanExporter
) -> None:
    with tracing.span("step", order_id="o-1"):
        log("outer", order_id="o-1")
        with tracing.span("inner"):
            log("inner", order_id="o-1")
    log("after")
    (inner, outer_span) = spans.get_finished_spans()
    assert outer_span.context is not None and inner.context is not None
    first, second, third = lines.lines
    assert first["trace_id"] == format(outer_span.context.trace_id, "032x")
    assert first["span_id"] == format(outer_span.context.span_id, "016x")
    assert second["span_id"] == format(inner.context.span_id, "016x")
    assert second["trace_id"] == first["trace_id"]
    assert len(str(first["trace_id"])) == 32 and len(str(first["span_id"])) == 16
    assert first["order_id"] == second["order_id"] == "o-1"
    assert "trace_id" not in third and "span_id" not in third


def test_with_tracing_off_lines_carry_no_trace_fields(lines: JsonLines) -> None:
    assert not tracing.tracing_enabled()
    with tracing.span("step") as span:
        span.set_attribute("order_id", "o-2")
        log("step", order_id="o-2")
    (line,) = lines.lines
    assert "trace_id" not in line and line["order_id"] == "o-2"
