"""The worker's Celery app: the shared task contract plus the one step task.

gRPC channels are per process: with the prefork pool each child builds its own in
`worker_process_init` (and, as a safety net, lazily when its pid changes), so no channel
ever exists in a process that forks afterwards.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready

from services.common.config import Settings
from services.common.lifecycle.grpc_clients import ServiceClients
from services.common.lifecycle.status import OrderStatus
from services.common.lifecycle.step_publisher import CeleryStepPublisher
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE, RUN_STEP_TASK, celery_config
from services.common.logs import log_event
from services.common.tracing import (
    configure_tracing,
    current_span,
    instrument_celery_worker,
    shutdown_tracing,
)
from services.lifecycle_worker.commands import (
    NoStepMetrics,
    RunStep,
    StepDependencies,
    StepMetrics,
    StepTiming,
)
from services.lifecycle_worker.heartbeat import heartbeat_step
from services.lifecycle_worker.metrics import PrometheusStepMetrics
from services.lifecycle_worker.service import advance_order

logger = logging.getLogger("fulfillment.lifecycle.worker")

# Steps are a few short gRPC calls, so a small batch per slot keeps slots busy between
# broker round trips; larger batches would only strand more messages if a worker died
# (the stale monitor recovers those, but later). ETA tasks do not count against it.
PREFETCH_MULTIPLIER = 4

# Deadlines and bounded retries keep a task far below this, even one that runs all four
# steps inline (step delays 0); the limit only catches a task that hangs anyway (its
# slot is recycled and the stale monitor re-drives the order). Only the prefork pool
# enforces it: Celery's threads pool cannot stop a thread, so there the gRPC deadlines
# and bounded retries are the only bound.
STEP_TIME_LIMIT_S = 300

# The `service` caller the worker is to the two services (history names it as its actor).
WORKER_SUBJECT = "lifecycle-worker"


class PerProcessDependencies:
    """Step dependencies built once per process, rebuilt if the pid changes (a fork)."""

    def __init__(self, build: Callable[[], tuple[StepDependencies, ServiceClients]]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._built: tuple[StepDependencies, ServiceClients] | None = None

    def get(self) -> StepDependencies:
        with self._lock:
            if self._built is None or self._pid != os.getpid():
                self._built = self._build()
                self._pid = os.getpid()
            return self._built[0]

    def close(self) -> None:
        with self._lock:
            if self._built is not None and self._pid == os.getpid():
                self._built[1].close()
            self._built = None


def start_tracing() -> None:
    """Trace the steps of this process (when the OTEL_* variables say so): a span per
    task, child of the context its message carries, and a span per step inside it."""
    if configure_tracing("worker"):
        instrument_celery_worker()


def create_worker_app(settings: Settings, liveness_file: Path | None = None) -> Celery:
    app = Celery("fulfillment-lifecycle")
    app.conf.update(celery_config(settings))
    app.conf.update(
        worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
        task_time_limit=STEP_TIME_LIMIT_S,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_redirect_stdouts=False,
        # A running step goes on when the broker connection drops; its ack is then lost and
        # the message comes back (visibility timeout), which an idempotent step absorbs.
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    app.steps["consumer"].add(
        heartbeat_step(settings.redis_url, liveness_file, settings.worker_stall_after_s)
    )
    timing = StepTiming(settings.step_delay_min_s, settings.step_delay_max_s)
    publisher = CeleryStepPublisher(app)

    def build() -> tuple[StepDependencies, ServiceClients]:
        clients = ServiceClients.connect(settings, subject=WORKER_SUBJECT)
        # Per process, after any fork: a pool child's series go to its own files.
        metrics: StepMetrics = PrometheusStepMetrics() if settings.worker_metrics_addr else NoStepMetrics()
        deps = StepDependencies(clients.orders, clients.reservations, publisher, timing, metrics)
        return deps, clients

    dependencies = PerProcessDependencies(build)

    @app.task(name=RUN_STEP_TASK, bind=True)
    def run_step(task: Any, order_id: str, expected_status: str, note: str = "") -> None:
        redelivered = bool((task.request.delivery_info or {}).get("redelivered"))
        current_span().set_attribute("order_id", order_id)  # the task's span (tracing on)
        command = RunStep(order_id, OrderStatus(expected_status), note, redelivered)
        advance_order(command, dependencies.get())

    def on_process_init(**_: Any) -> None:
        # A prefork pool child: trace here (after the fork), before its channels exist.
        start_tracing()
        dependencies.get()

    def on_process_shutdown(**_: Any) -> None:
        dependencies.close()
        shutdown_tracing()

    def on_ready(sender: Any = None, **_: Any) -> None:
        log_event(
            logger, "worker_ready", hostname=getattr(sender, "hostname", ""),
            queue=LIFECYCLE_QUEUE, pid=os.getpid(),
        )

    worker_process_init.connect(on_process_init, weak=False)
    worker_process_shutdown.connect(on_process_shutdown, weak=False)
    worker_ready.connect(on_ready, weak=False)
    return app
