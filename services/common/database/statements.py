"""The hot statements on asyncpg directly: compiled once, run on a pool of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.elements import TextClause

from services.common.database.failures import CONNECTION_LOST
from services.common.database.urls import libpq_url


@dataclass(frozen=True)
class RawStatement:
    """A SQLAlchemy text() statement compiled once for asyncpg: $n placeholders, and the
    bind parameter names in $n order."""

    sql: str
    names: tuple[str, ...]

    @classmethod
    def compile(cls, clause: TextClause) -> RawStatement:
        compiled = clause.compile(dialect=asyncpg_dialect())
        return cls(str(compiled), tuple(compiled.positiontup or ()))

    def arguments(self, params: Mapping[str, object]) -> list[object]:
        return [params[name] for name in self.names]


class StatementPool:
    """asyncpg connections of its own for the few statements every order runs (a create,
    each transition, each reservation), each statement its own transaction (autocommit).

    SQLAlchemy's pool checkout, connection wrapper and execution path cost about 140 us of
    CPU per statement here (measured: 180 us against 40 us for the same statement run on
    an asyncpg connection), more than the statement itself. Those statements are still
    written as text() and compiled once (RawStatement); everything else goes through
    SQLAlchemy. Connections open on demand, up to `size`; one runs one statement at a time.
    A connection is dropped after anything but an error PostgreSQL reported on a sound
    connection: a cancelled call drops it, a lost connection drops every idle one too
    (the server most likely restarted), so a broken connection is not used twice.
    Errors are asyncpg's: `sqlstate()` reads them, and the gRPC layer maps connection
    failures to UNAVAILABLE. Callers retry deadlocks with `retry_on_conflict`.

    Why not asyncpg's own pool (asyncpg.create_pool, 0.32): on losses it does as well (a
    thin wrapper that terminates a cancelled call's connection and expires the others after
    a lost one passed tests/unit/test_statement_pool.py and test_database_restarts.py), but
    it costs the calling process 20-50 us more CPU per statement. Measured on a 2-core
    machine (`python -m services.bench.statement_pool`: 16 connections, 16-64
    callers, medians of 3 runs; CPU of the calling process per statement), ours against
    asyncpg.Pool with its reset turned off:
    - one-row UPDATE ... RETURNING: 37-40 us against 57-62 us, 12,700-13,500 statements/s
      against 10,500-11,400/s;
    - order create: 101-125 us against 133-147 us; a transition: 109-130 against 151-183;
      a reservation of 1-3 lines (the inventory's statement, same method): 75-77 against
      97-115.
    Its acquire and release alone cost 20 us (under 1 us for the semaphore and list here):
    a proxy, futures, a timeout and, for every release, a task under asyncio.shield. With
    its default reset (a round trip of `SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL` on every release) the UPDATE costs 88-111 us here and 45-70 us
    more in PostgreSQL, at 5,900-7,600/s. That reset undoes session state which none of
    the statements run here leaves behind (each is one autocommit statement: no open
    transaction, SET, LISTEN, cursor or session advisory lock); keep it so. End to end, on
    a loaded box, `bench hot-sku --quick` reached a median 50% of its raw UPDATE limit with
    this pool and 34% with asyncpg's (five alternating runs each), `bench create --quick`
    28.5% and 27.6% of its echo limit at c=32.
    """

    def __init__(self, url: str, size: int, connect_timeout_s: float = 10.0) -> None:
        self._dsn = libpq_url(url)
        self._slots = asyncio.Semaphore(size)
        self._idle: list[asyncpg.Connection] = []
        self._connect_timeout_s = connect_timeout_s
        self._closed = False

    async def fetch(self, statement: RawStatement, params: Mapping[str, object]) -> list[asyncpg.Record]:
        async with self._slots:
            if self._closed:
                raise asyncpg.InterfaceError("the statement pool is closed")
            arguments = statement.arguments(params)
            conn = self._open_idle_connection() or await self._connect()
            try:
                rows = await conn.fetch(statement.sql, *arguments)
            except CONNECTION_LOST:
                self._drop_all(conn)
                raise
            except asyncpg.PostgresError:
                self._give_back(conn)
                raise
            except BaseException:
                conn.terminate()  # cancelled mid-statement: its state is unknown
                raise
            self._give_back(conn)
            return rows

    def _open_idle_connection(self) -> asyncpg.Connection | None:
        """An idle connection the server has not closed meanwhile: a restart closes every
        one, and asyncpg notices as it happens (is_closed() costs no round trip)."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            conn.terminate()
        return None

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self._dsn, timeout=self._connect_timeout_s)

    def _give_back(self, conn: asyncpg.Connection) -> None:
        if self._closed or conn.is_closed():
            conn.terminate()
        else:
            self._idle.append(conn)

    def _drop_all(self, conn: asyncpg.Connection) -> None:
        """A lost connection usually means the server restarted or went away: the idle
        ones are dropped with it rather than each failing one more call later."""
        conn.terminate()
        idle, self._idle = self._idle, []
        for other in idle:
            other.terminate()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except (OSError, asyncpg.InterfaceError, asyncpg.PostgresError, TimeoutError):
                conn.terminate()


