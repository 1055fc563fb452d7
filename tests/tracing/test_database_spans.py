"""One database instrumentation, every statement once: the statement pool's hot path
(asyncpg's Connection.fetch) and SQLAlchemy's (asyncpg prepared statements) alike."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

from services.common import tracing
from services.common.database.engines import service_pools
from services.common.database.statements import RawStatement

pytestmark = pytest.mark.integration

POOL_STATEMENT = RawStatement.compile(text("SELECT CAST(:n AS integer) + 1 AS pool_answer"))


async def run_both(database_url: str) -> None:
    engine, statements = service_pools(database_url, 3)
    try:
        with tracing.span("call"):
            (row,) = await statements.fetch(POOL_STATEMENT, {"n": 41})
            assert row["pool_answer"] == 42
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 7 AS engine_answer"))).scalar() == 7
    finally:
        await statements.close()
        await engine.dispose()


def test_statement_pool_and_sqlalchemy_statements_are_each_one_span(
    database_url: str, spans: InMemorySpanExporter
) -> None:
    asyncio.run(run_both(database_url))
    finished = spans.get_finished_spans()
    (call,) = [s for s in finished if s.name == "call"]
    assert call.context is not None
    statements = [s for s in finished if s.kind is SpanKind.CLIENT]
    texts = [str((s.attributes or {}).get("db.statement", "")) for s in statements]
    assert sum("pool_answer" in t for t in texts) == 1, texts
    assert sum("engine_answer" in t for t in texts) == 1, texts
    for statement in statements:
        assert statement.context is not None and statement.parent is not None
        assert statement.context.trace_id == call.context.trace_id
        assert statement.parent.span_id == call.context.span_id


def test_without_tracing_the_pools_are_not_instrumented(database_url: str) -> None:
    assert not tracing.tracing_enabled()
    asyncio.run(run_both(database_url))
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    assert not AsyncPGInstrumentor().is_instrumented_by_opentelemetry
