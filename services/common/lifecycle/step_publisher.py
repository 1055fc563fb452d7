"""Publishing step tasks by name through Celery (the contract in tasks.py): the worker's
next steps and the monitor's re-drives."""

from __future__ import annotations

import time

from celery import Celery
from kombu.exceptions import KombuError, OperationalError
from redis.exceptions import RedisError

from services.common.lifecycle.ports import PublishFailed
from services.common.lifecycle.status import OrderStatus
from services.common.lifecycle.tasks import PUBLISHED_AT_HEADER, RUN_STEP_TASK
from services.common.tracing import inject_trace_context


class CeleryStepPublisher:
    def __init__(self, app: Celery) -> None:
        self._app = app

    def publish_step(
        self, order_id: str, status: OrderStatus, delay_s: float = 0.0, note: str = ""
    ) -> None:
        """Enqueue the step for `status`; a delay becomes a broker ETA, never a sleep. The
        message carries the current trace context (when tracing), so the step continues
        the trace of whoever published it (a step, a re-drive)."""
        headers: dict[str, object] = {PUBLISHED_AT_HEADER: time.time()}
        inject_trace_context(headers)
        try:
            self._app.send_task(
                RUN_STEP_TASK,
                args=[order_id, status.value],
                kwargs={"note": note} if note else None,
                countdown=delay_s if delay_s > 0 else None,
                headers=headers,
            )
        except (OperationalError, KombuError, RedisError, OSError) as exc:
            raise PublishFailed(f"cannot enqueue step {status} of {order_id}: {exc}") from exc
