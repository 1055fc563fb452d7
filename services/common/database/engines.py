"""SQLAlchemy's async engine for a service, and how its connections are budgeted."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from services.common.database.failures import SERVER_GOING_OR_COMING_SQLSTATES, sqlstate
from services.common.database.statements import StatementPool
from services.common.database.urls import driver_url
from services.common.tracing import instrument_asyncpg


def create_engine(url: str, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    engine = create_async_engine(
        driver_url(url, "asyncpg"),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
    )
    event.listen(engine.sync_engine, "handle_error", _server_gone_is_a_disconnect)
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(
    _dbapi_connection: object, record: ConnectionPoolEntry, _proxy: object
) -> None:
    """A restart of the server closes every pooled connection, and the pool would hand the
    first caller afterwards a dead one (an UNAVAILABLE long after the server is back).
    asyncpg notices the close as it happens, so is_closed() costs no round trip, unlike
    pool_pre_ping; raising makes the pool drop every connection as old and open a new one."""
    if record.driver_connection is not None and record.driver_connection.is_closed():
        raise sa_exc.InvalidatePoolError("the server closed this pooled connection")


def _server_gone_is_a_disconnect(context: ExceptionContext) -> None:
    """SQLAlchemy's asyncpg dialect recognises a lost connection only by a closed
    connection or its message: a server refusing connections while it stops or starts
    (57P01-57P03) or a connection-class error (08xxx) would be a plain DBAPIError, which
    the gRPC layer cannot tell from a bug. As a disconnect it is connection_invalidated
    (UNAVAILABLE), and one met by a statement invalidates the pool."""
    code = sqlstate(context.original_exception)
    if code is not None and (code in SERVER_GOING_OR_COMING_SQLSTATES or code.startswith("08")):
        context.is_disconnect = True


@dataclass(frozen=True)
class ConnectionBudget:
    """How a service process's PostgreSQL connections (FULFILLMENT_DB_CONNECTIONS) are
    split: two thirds for the statement pool, which runs the statements every order runs,
    the rest for SQLAlchemy's pool (reads, multi-statement transactions). Both open
    connections on demand and keep them; neither overflows, so a caller beyond the budget
    waits for a connection instead of opening one."""

    statements: int
    sqlalchemy: int

    @classmethod
    def of(cls, total: int) -> ConnectionBudget:
        statements = max(1, total * 2 // 3)
        return cls(statements, max(1, total - statements))


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, with every statement its own transaction (no BEGIN/COMMIT round trips,
    no lock held across a round trip)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def service_pools(url: str, connections: int) -> tuple[AsyncEngine, StatementPool]:
    """A service process's SQLAlchemy engine and statement pool, splitting its
    `connections` between them (ConnectionBudget). When the process traces, each statement
    on either is a span (both run on asyncpg: one instrumentation, no statement twice)."""
    instrument_asyncpg()
    budget = ConnectionBudget.of(connections)
    engine = create_engine(url, pool_size=budget.sqlalchemy, max_overflow=0)
    return engine, StatementPool(url, budget.statements)


