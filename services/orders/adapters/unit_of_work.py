"""The unit of work: one PostgreSQL transaction that owns the commit, rerun when PostgreSQL
reports a deadlock or serialization failure. Handlers never commit themselves.

`autocommit` runs each statement as its own transaction (no BEGIN and no COMMIT), for
work whose only write is one statement: the statements every order runs on the statement
pool (asyncpg), others on a SQLAlchemy connection checked out only if one is needed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.database.engines import autocommit_engine
from services.common.database.statements import StatementPool
from services.common.database.transactions import retry_on_conflict, run_transaction
from services.orders.adapters.repository import AutocommitOrderRepository, SqlOrderRepository
from services.orders.service_layer.ports import OrderRepository

T = TypeVar("T")


class SqlUnitOfWork:
    def __init__(self, engine: AsyncEngine, statements: StatementPool) -> None:
        self._engine = engine
        self._autocommit_engine = autocommit_engine(engine)
        self._statements = statements

    async def transaction(
        self, work: Callable[[OrderRepository], Awaitable[T]], *, name: str
    ) -> T:
        async def in_transaction(conn: AsyncConnection) -> T:
            return await work(SqlOrderRepository(conn))

        return await run_transaction(self._engine, in_transaction, name=name)

    async def autocommit(
        self, work: Callable[[OrderRepository], Awaitable[T]], *, name: str
    ) -> T:
        async def attempt() -> T:
            repo = AutocommitOrderRepository(self._autocommit_engine, self._statements)
            try:
                return await work(repo)
            finally:
                await repo.close()

        return await retry_on_conflict(attempt, name=name)
