"""The unit of work: one database transaction that owns the commit, rerun when PostgreSQL
reports a deadlock or serialization failure. Handlers never commit themselves."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db import RETRYABLE_SQLSTATES, run_transaction, sqlstate

T = TypeVar("T")


class UnitOfWork:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]], *, name: str) -> T:
        """Commit when `work` returns, roll back when it raises. `work` may run more than
        once, so it must not have effects outside the transaction (log after this returns).
        """
        return await run_transaction(self._engine, work, name=name)

    async def run_single_statement(
        self, work: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = 12
    ) -> T:
        """Run `work`, which must issue exactly ONE statement, in autocommit mode.

        PostgreSQL then runs the statement as its own transaction and commits it as it
        ends: all of it or (on any error) none of it, with no BEGIN or COMMIT round trip,
        and no lock it takes outlives the statement. Rerun like `run` on deadlock.
        """
        for attempt in range(1, attempts + 1):
            try:
                async with self._engine.connect() as conn:
                    autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    return await work(autocommit)
            except sa_exc.DBAPIError as exc:
                if sqlstate(exc) not in RETRYABLE_SQLSTATES or attempt == attempts:
                    raise
                await asyncio.sleep(random.uniform(0, 0.002 * 2**min(attempt, 8)))
        raise AssertionError("unreachable")
