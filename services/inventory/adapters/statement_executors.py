"""Where a repository's statements run: in the caller's transaction, or each statement as
its own transaction (autocommit). The repositories read the same either way; the unit of
work picks one.

`fetch_hot` is for the one statement every reservation runs. In autocommit it goes to the
statement pool, which runs it on asyncpg without SQLAlchemy's per-statement cost. A
reservation batch's transaction (DriverTransactionExecutor) runs its statements the same
way, on asyncpg.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Protocol

import asyncpg
from sqlalchemy import CursorResult, Executable
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import TextClause

from services.common.database.statements import RawStatement, StatementPool


class StatementExecutor(Protocol):
    async def execute(self, statement: Executable, params: Any = None) -> CursorResult[Any]: ...

    async def fetch_hot(self, statement: TextClause, params: Mapping[str, object]) -> Sequence[Any]:
        """The rows of `statement`, by column name. Its errors are the driver's (asyncpg),
        as raised directly or wrapped by SQLAlchemy (`.orig`); either way a statement that
        fails has done nothing and leaves a surrounding transaction usable."""


class TransactionExecutor:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def execute(self, statement: Executable, params: Any = None) -> CursorResult[Any]:
        return await self._conn.execute(statement, params)

    async def fetch_hot(self, statement: TextClause, params: Mapping[str, object]) -> Sequence[Any]:
        # A failed statement aborts the whole transaction in PostgreSQL; inside a savepoint
        # it aborts only itself, as it would in autocommit.
        async with self._conn.begin_nested():
            result = await self._conn.execute(statement, dict(params))
            return [row._mapping for row in result]


class DriverTransactionExecutor:
    """A transaction on asyncpg directly (UnitOfWork.hot_transaction), for the few
    statements a reservation batch runs, all written as text() and run with `fetch_hot`.
    Unlike in the other executors, a statement that fails fails the whole transaction
    (no savepoint: none of these statements fails on purpose)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Executable, params: Any = None) -> CursorResult[Any]:
        raise NotImplementedError("a hot transaction runs only text() statements, by fetch_hot")

    async def fetch_hot(self, statement: TextClause, params: Mapping[str, object]) -> Sequence[Any]:
        raw = _compiled(statement)
        return await self._conn.fetch(raw.sql, *raw.arguments(params))


class AutocommitExecutor:
    """Every statement its own transaction: the hot one on the statement pool, any other on
    a SQLAlchemy connection checked out once, when first needed (close() returns it)."""

    def __init__(self, engine: AsyncEngine, statements: StatementPool) -> None:
        self._engine = engine
        self._statements = statements
        self._lazy: AsyncConnection | None = None

    async def execute(self, statement: Executable, params: Any = None) -> CursorResult[Any]:
        if self._lazy is None:
            self._lazy = await self._engine.connect()
        return await self._lazy.execute(statement, params)

    async def fetch_hot(self, statement: TextClause, params: Mapping[str, object]) -> Sequence[Any]:
        return await self._statements.fetch(_compiled(statement), params)

    async def close(self) -> None:
        if self._lazy is not None:
            await self._lazy.close()


@cache
def _compiled(statement: TextClause) -> RawStatement:
    return RawStatement.compile(statement)
