"""Hands new orders to the lifecycle worker: publishes the first step task to Celery by name
(the orders service never imports the worker)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from services.common.config import Settings
from services.common.lifecycle_tasks import RUN_STEP_TASK, make_sender
from services.common.logs import log_event
from services.orders.domain.lifecycle import FIRST_STATUS

logger = logging.getLogger("fulfillment.orders")


class CeleryStepPublisher:
    def __init__(self, settings: Settings, threads: int = 4) -> None:
        self._sender = make_sender(settings)
        # Celery publishes with blocking I/O; a few threads keep it off the event loop and
        # bound how many publishes wait on a broker that does not answer.
        self._threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="step-publisher")

    async def publish_first_steps(self, order_ids: Sequence[uuid.UUID]) -> None:
        loop = asyncio.get_running_loop()
        # Each publish waits on one Redis round trip; spread a batch over the threads.
        shares = [list(order_ids[i :: self._threads]) for i in range(self._threads)]
        try:
            await asyncio.gather(
                *(loop.run_in_executor(self._executor, self._send, share) for share in shares if share)
            )
        except Exception as exc:
            # The orders are committed and their first step is due at next_step_due_time;
            # the stale monitor re-drives them once that has passed.
            log_event(
                logger, "step_publish_failed", logging.WARNING,
                orders=len(order_ids), first_order_id=str(order_ids[0]), error=repr(exc),
            )

    def _send(self, order_ids: list[uuid.UUID]) -> None:
        with self._sender.producer_or_acquire() as producer:
            for order_id in order_ids:
                self._sender.send_task(
                    RUN_STEP_TASK, args=[str(order_id), FIRST_STATUS.value], producer=producer
                )

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._close)

    def _close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._sender.close()
