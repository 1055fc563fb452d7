"""The unit of work: one database transaction that owns the commit, rerun when PostgreSQL
reports a deadlock or serialization failure. Handlers never commit themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.database.engines import autocommit_engine
from services.common.database.statements import StatementPool
from services.common.database.transactions import retry_on_conflict, run_transaction

T = TypeVar("T")


class UnitOfWork:
    def __init__(self, engine: AsyncEngine, statements: StatementPool) -> None:
        self._engine = engine
        self._autocommit_engine = autocommit_engine(engine)
        self._statements = statements

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]], *, name: str) -> T:
        """Commit when `work` returns, roll back when it raises. `work` may run more than
        once, so it must not have effects outside the transaction (log after this returns).
        """
        return await run_transaction(self._engine, work, name=name)

    async def run_single_statement(
        self, work: Callable[[AsyncConnection], Awaitable[T]], *, name: str = "statement"
    ) -> T:
        """Run `work`, which must issue exactly ONE statement, in autocommit mode: its own
        transaction inside PostgreSQL, no lock held across a round trip. Rerun like `run`."""
        return await run_transaction(self._autocommit_engine, work, name=name)

    async def run_hot_statement(
        self, work: Callable[[StatementPool], Awaitable[T]], *, name: str = "statement"
    ) -> T:
        """Like `run_single_statement`, on the statement pool (asyncpg, no SQLAlchemy in
        the way): for the one statement every reservation runs. Rerun like `run`."""
        return await retry_on_conflict(lambda: work(self._statements), name=name)
