"""Releases the stock of ended (canceled or failed) orders whose release is pending.

Runs once at startup (a release may have been pending when the process stopped) and
whenever a release fails, backing off while the inventory stays unreachable; it sleeps
while nothing is pending. Several processes may retry the same order: ReleaseStock is
idempotent, so that is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.common.logs import log_event
from services.orders.service_layer.cancellation import release_stock_of_ended
from services.orders.service_layer.ports import StockReleaser, UnitOfWork

logger = logging.getLogger("fulfillment.orders")

SWEEP_LIMIT = 100


class StockReleaseRetrier:
    def __init__(
        self,
        uow: UnitOfWork,
        releaser: StockReleaser,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._uow = uow
        self._releaser = releaser
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="stock-release-retrier")

    def retry_soon(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = self._initial_backoff_s
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                all_released = await self.release_pending()
            except Exception:
                logger.exception("stock release sweep failed")
                all_released = False
            if all_released:
                backoff = self._initial_backoff_s
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)
            self._wake.set()
            backoff = min(backoff * 2, self._max_backoff_s)

    async def release_pending(self) -> bool:
        """Try every pending release once; True when none is left pending."""
        pending = await self._uow.transaction(
            lambda repo: repo.orders_awaiting_stock_release(SWEEP_LIMIT),
            name="orders_awaiting_stock_release",
        )
        if pending:
            log_event(logger, "stock_release_retry", pending=len(pending))
        for order_id in pending:
            # One failure means the inventory is unreachable: the rest would fail too.
            if not await release_stock_of_ended(order_id, self._uow, self._releaser):
                return False
        if len(pending) == SWEEP_LIMIT:
            self._wake.set()
        return True
