"""Orders by status for the metrics: counted in the database every few seconds while
metrics are on (the gauge fulfillment_orders{status}), by one background task per server
process. The count itself is OrderRepository.count_by_status."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.common.lifecycle.status import OrderStatus
from services.common.logs import log_event
from services.orders.service_layer.ports import OrderMetrics, UnitOfWork

logger = logging.getLogger("fulfillment.orders")

REFRESH_INTERVAL_S = 15.0


async def count_orders_by_status(uow: UnitOfWork) -> dict[OrderStatus, int]:
    return await uow.autocommit(lambda repo: repo.count_by_status(), name="count_by_status")


class OrdersByStatusRefresher:
    def __init__(
        self, uow: UnitOfWork, metrics: OrderMetrics, interval_s: float = REFRESH_INTERVAL_S
    ) -> None:
        self._uow = uow
        self._metrics = metrics
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="orders-by-status")

    async def refresh(self) -> None:
        self._metrics.orders_by_status(await count_orders_by_status(self._uow))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # the database is down: the gauge keeps its last values
                log_event(
                    logger, "orders_by_status_unavailable", logging.WARNING,
                    error=f"{type(exc).__name__}: {exc}",
                )
            await asyncio.sleep(self._interval_s)
