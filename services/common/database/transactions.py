"""Transactions that are rerun when PostgreSQL reports a deadlock or serialization failure."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.database.failures import RETRYABLE_SQLSTATES, sqlstate
from services.common.logs import log_event

logger = logging.getLogger("fulfillment.db")

T = TypeVar("T")


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T]], *, attempts: int = 12, name: str = "transaction"
) -> T:
    """Run `attempt`, again after a deadlock or serialization failure (it did nothing)."""
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except Exception as exc:
            if sqlstate(exc) not in RETRYABLE_SQLSTATES or number == attempts:
                raise
            log_event(
                logger, "transaction_retry", logging.DEBUG,
                name=name, attempt=number, sqlstate=sqlstate(exc),
            )
            await asyncio.sleep(random.uniform(0, 0.002 * 2**min(number, 8)))
    raise AssertionError("unreachable")


async def run_transaction(
    engine: AsyncEngine,
    work: Callable[[AsyncConnection], Awaitable[T]],
    *,
    attempts: int = 12,
    name: str = "transaction",
) -> T:
    """Run `work` in one transaction, rerunning it on deadlock or serialization failure.

    `work` must be safe to rerun: everything it did is rolled back before the next try.
    Given `autocommit_engine(engine)`, no BEGIN/COMMIT is sent: each statement `work`
    issues is its own transaction, so `work` must write with at most one statement.
    """

    async def in_transaction() -> T:
        async with engine.begin() as conn:
            return await work(conn)

    return await retry_on_conflict(in_transaction, attempts=attempts, name=name)


