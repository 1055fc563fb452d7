"""The database plumbing across a PostgreSQL restart (both seen in the restart test,
tests/lifecycle/test_e2e_database_restart.py):

- a server that refuses connections while it starts or stops (SQLSTATE 57P01-57P03,
  class 08) answers callers UNAVAILABLE, also through SQLAlchemy, whose asyncpg dialect
  reports that refusal as a plain DBAPIError (GetOrder answered INTERNAL during recovery);
- a connection the restart closed while it sat idle in a pool is never handed to a
  caller (GetStock answered UNAVAILABLE long after the server was back).
"""

from __future__ import annotations

import asyncio
import struct

import pytest
from google.rpc import code_pb2
from sqlalchemy import text

from services.common.database.engines import create_engine
from services.common.database.statements import RawStatement, StatementPool
from services.common.error_status import to_status_proto
from tests.private_postgres import PrivatePostgres

pytestmark = pytest.mark.integration

SSL_REQUEST_CODE = 80877103


async def refuse_every_connection(sqlstate: str, message: str) -> asyncio.Server:
    """A loopback server speaking just enough of the PostgreSQL protocol to refuse a
    connection at startup the way a starting or stopping server does: FATAL `sqlstate`."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = struct.unpack("!I", await reader.readexactly(4))[0]
                body = await reader.readexactly(length - 4)
                if struct.unpack("!I", body[:4])[0] != SSL_REQUEST_CODE:
                    break  # the StartupMessage
                writer.write(b"N")  # no TLS here; the client goes on in plain text
            fields = b"".join(
                kind + value.encode() + b"\0"
                for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
            ) + b"\0"
            writer.write(b"E" + struct.pack("!I", len(fields) + 4) + fields)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(refuse, "127.0.0.1", 0)


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("57P03", "the database system is not yet accepting connections"),
        ("57P03", "the database system is starting up"),
        ("57P01", "terminating connection due to administrator command"),
        ("57P02", "terminating connection because of crash of another server process"),
        ("08006", "connection failure"),
    ],
)
def test_a_server_refusing_connections_through_sqlalchemy_is_unavailable(
    sqlstate: str, message: str
) -> None:
    async def query_through_sqlalchemy() -> BaseException:
        server = await refuse_every_connection(sqlstate, message)
        port = server.sockets[0].getsockname()[1]
        engine = create_engine(f"postgresql://postgres@127.0.0.1:{port}/fulfillment", pool_size=1)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return exc
        finally:
            await engine.dispose()
            server.close()
            await server.wait_closed()
        raise AssertionError("a server that refuses every connection let a query through")

    raised = asyncio.run(asyncio.wait_for(query_through_sqlalchemy(), timeout=20))
    status = to_status_proto(raised, "/test/Query")
    assert status.code == code_pb2.UNAVAILABLE, (type(raised), raised)


def test_connections_a_restart_closed_while_idle_are_not_handed_out() -> None:
    one = RawStatement.compile(text("SELECT 1 AS one"))

    async def first_reads_after_a_restart(server: PrivatePostgres) -> list[object]:
        url = server.url("postgres")
        engine = create_engine(url, pool_size=2, max_overflow=0)
        statements = StatementPool(url, size=2)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            await statements.fetch(one, {})  # each pool now keeps an idle connection
            await asyncio.to_thread(server.stop_server, "fast")
            await asyncio.to_thread(server.start_server)
            async with engine.connect() as conn:
                through_sqlalchemy = (await conn.execute(text("SELECT 1"))).scalar()
            through_statement_pool = (await statements.fetch(one, {}))[0]["one"]
            return [through_sqlalchemy, through_statement_pool]
        finally:
            await engine.dispose()
            await statements.close()

    with PrivatePostgres() as server:
        assert asyncio.run(asyncio.wait_for(first_reads_after_a_restart(server), timeout=60)) == [1, 1]
