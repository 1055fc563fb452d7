"""The asyncpg statement pool behind the hot one-statement paths, on the real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from google.rpc import code_pb2
from sqlalchemy import text

from services.common.database.failures import CONNECTION_LOST
from services.common.database.statements import RawStatement, StatementPool
from services.common.database.transactions import retry_on_conflict
from services.common.error_status import to_status_proto
from tests.support import free_port

pytestmark = pytest.mark.integration

ECHO = RawStatement.compile(
    text("SELECT CAST(:a AS bigint) + CAST(:a AS bigint) AS twice, CAST(:b AS text) AS b")
)
BACKEND = RawStatement.compile(text("SELECT pg_backend_pid() AS pid, pg_sleep(CAST(:s AS float8))"))
DIVIDE = RawStatement.compile(text("SELECT 1 / CAST(:d AS int) AS q"))


def run(coro):
    return asyncio.run(coro)


def test_named_parameters_compile_to_positions_once_each():
    assert ECHO.names == ("a", "b")
    assert "$1" in ECHO.sql and "$2" in ECHO.sql and ":a" not in ECHO.sql


def test_rows_are_read_by_name_and_position(database_url):
    async def scenario():
        pool = StatementPool(database_url, 2)
        try:
            (row,) = await pool.fetch(ECHO, {"a": 21, "b": "x"})
            return row["twice"], row[1]
        finally:
            await pool.close()

    assert run(scenario()) == (42, "x")


def test_never_more_connections_than_its_size_under_concurrency(database_url):
    async def scenario():
        pool = StatementPool(database_url, 3)
        try:
            rows = await asyncio.gather(*(pool.fetch(BACKEND, {"s": 0.05}) for _ in range(12)))
            return {r[0]["pid"] for r in rows}
        finally:
            await pool.close()

    assert 1 <= len(run(scenario())) <= 3


def test_an_error_postgresql_reports_keeps_the_connection_a_cancelled_call_drops_it(database_url):
    async def scenario():
        pool = StatementPool(database_url, 1)
        try:
            (first,) = await pool.fetch(BACKEND, {"s": 0})
            with pytest.raises(asyncpg.DivisionByZeroError):
                await pool.fetch(DIVIDE, {"d": 0})
            (same,) = await pool.fetch(BACKEND, {"s": 0})
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pool.fetch(BACKEND, {"s": 2}), timeout=0.2)
            (fresh,) = await pool.fetch(BACKEND, {"s": 0})
            return first["pid"], same["pid"], fresh["pid"]
        finally:
            await pool.close()

    first, same, fresh = run(scenario())
    assert same == first
    assert fresh != first


def test_a_closed_pool_refuses_work(database_url):
    async def scenario():
        pool = StatementPool(database_url, 1)
        await pool.fetch(ECHO, {"a": 1, "b": ""})
        await pool.close()
        await pool.fetch(ECHO, {"a": 1, "b": ""})

    with pytest.raises(asyncpg.InterfaceError):
        run(scenario())


def test_an_unreachable_database_is_unavailable_to_the_caller():
    async def scenario():
        pool = StatementPool(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", 1)
        try:
            await pool.fetch(ECHO, {"a": 1, "b": ""})
        finally:
            await pool.close()

    with pytest.raises(Exception) as raised:
        run(scenario())
    assert to_status_proto(raised.value, "m").code == code_pb2.UNAVAILABLE
    assert to_status_proto(asyncpg.ConnectionDoesNotExistError("gone"), "m").code == code_pb2.UNAVAILABLE
    half_closed = asyncpg.exceptions.InternalClientError("cannot switch to state 12")
    assert to_status_proto(half_closed, "m").code == code_pb2.UNAVAILABLE


def test_deadlocks_are_retried_other_errors_are_not():
    calls = []

    async def deadlocked_once():
        calls.append(1)
        if len(calls) == 1:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        return "done"

    assert run(retry_on_conflict(deadlocked_once, name="t")) == "done" and len(calls) == 2

    async def divides_by_zero():
        calls.append(1)
        raise asyncpg.DivisionByZeroError("division by zero")

    calls.clear()
    with pytest.raises(asyncpg.DivisionByZeroError):
        run(retry_on_conflict(divides_by_zero, name="t"))
    assert len(calls) == 1


def test_a_lost_connection_drops_the_idle_ones_too(database_url):
    async def scenario():
        pool = StatementPool(database_url, 3)
        admin = await asyncpg.connect(database_url)
        try:
            rows = await asyncio.gather(*(pool.fetch(BACKEND, {"s": 0.05}) for _ in range(3)))
            pids = {r[0]["pid"] for r in rows}
            # What a server restart does to every connection of the pool.
            await admin.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p", list(pids))
            # Which error depends on how far asyncpg got reading the server's goodbye.
            with pytest.raises(CONNECTION_LOST):
                await pool.fetch(BACKEND, {"s": 0})
            (after,) = await pool.fetch(BACKEND, {"s": 0})
            return pids, after["pid"]
        finally:
            await admin.close()
            await pool.close()

    before, after = run(scenario())
    assert after not in before
