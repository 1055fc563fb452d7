"""The unit of work: one PostgreSQL transaction that owns the commit, rerun when PostgreSQL
reports a deadlock or serialization failure. Handlers never commit themselves.

`autocommit` runs on the same pool with each statement its own transaction (asyncpg then
sends no BEGIN and no COMMIT), for work whose only write is one statement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db import autocommit_engine, run_transaction
from services.orders.adapters.repository import SqlOrderRepository
from services.orders.service_layer.ports import OrderRepository

T = TypeVar("T")


class SqlUnitOfWork:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._autocommit_engine = autocommit_engine(engine)

    async def transaction(
        self, work: Callable[[OrderRepository], Awaitable[T]], *, name: str
    ) -> T:
        async def in_transaction(conn: AsyncConnection) -> T:
            return await work(SqlOrderRepository(conn))

        return await run_transaction(self._engine, in_transaction, name=name)

    async def autocommit(
        self, work: Callable[[OrderRepository], Awaitable[T]], *, name: str
    ) -> T:
        async def on_connection(conn: AsyncConnection) -> T:
            return await work(SqlOrderRepository(conn))

        return await run_transaction(self._autocommit_engine, on_connection, name=name)
