"""The unit of work: one PostgreSQL transaction that owns the commit, rerun when PostgreSQL
reports a deadlock or serialization failure. Handlers never commit themselves.

`autocommit` runs each statement as its own transaction (no BEGIN and no COMMIT), for
work whose only write is one statement: the reservation statement on the statement pool
(asyncpg), others on a SQLAlchemy connection checked out only if one is needed.
`hot_transaction` is a transaction whose statements run on asyncpg directly: a batch of
reservations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.database.engines import autocommit_engine
from services.common.database.statements import StatementPool
from services.common.database.transactions import retry_on_conflict, run_transaction
from services.inventory.adapters.product_repository import SqlProductRepository
from services.inventory.adapters.reservation_repository import SqlReservationRepository
from services.inventory.adapters.statement_executors import (
    AutocommitExecutor,
    DriverTransactionExecutor,
    StatementExecutor,
    TransactionExecutor,
)
from services.inventory.service_layer.ports import Repositories

T = TypeVar("T")


@dataclass(frozen=True)
class SqlRepositories:
    products: SqlProductRepository
    reservations: SqlReservationRepository

    @classmethod
    def on(cls, db: StatementExecutor) -> SqlRepositories:
        return cls(SqlProductRepository(db), SqlReservationRepository(db))


class SqlUnitOfWork:
    def __init__(self, engine: AsyncEngine, statements: StatementPool) -> None:
        self._engine = engine
        self._autocommit_engine = autocommit_engine(engine)
        self._statements = statements

    async def transaction(self, work: Callable[[Repositories], Awaitable[T]], *, name: str) -> T:
        async def in_transaction(conn: AsyncConnection) -> T:
            return await work(SqlRepositories.on(TransactionExecutor(conn)))

        return await run_transaction(self._engine, in_transaction, name=name)

    async def hot_transaction(
        self, work: Callable[[Repositories], Awaitable[T]], *, name: str
    ) -> T:
        # A connection of SQLAlchemy's pool (the process's budget), its transaction run on
        # asyncpg itself: SQLAlchemy's execution path would cost more CPU per statement than
        # the statement. asyncpg rolls back on an error; a connection left in an unknown
        # state (cancelled, or failed other than by PostgreSQL) is discarded.
        async def attempt() -> T:
            async with self._autocommit_engine.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                try:
                    async with driver.transaction():
                        return await work(SqlRepositories.on(DriverTransactionExecutor(driver)))
                except asyncpg.PostgresError:
                    raise
                except BaseException:
                    await conn.invalidate()
                    raise

        return await retry_on_conflict(attempt, name=name)

    async def autocommit(self, work: Callable[[Repositories], Awaitable[T]], *, name: str) -> T:
        async def attempt() -> T:
            db = AutocommitExecutor(self._autocommit_engine, self._statements)
            try:
                return await work(SqlRepositories.on(db))
            finally:
                await db.close()

        return await retry_on_conflict(attempt, name=name)
