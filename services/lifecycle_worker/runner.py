"""`fulfillment worker`: run the lifecycle worker in the foreground.

SIGTERM is Celery's warm shutdown: stop taking tasks, let running steps finish, hand
prefetched and countdown tasks back to the broker, exit 0.

/metrics (WORKER_METRICS_ADDR) is served by this main process: with the prefork pool the
children's step durations come from their files (services.common.metrics.multiprocess),
and the lifecycle queue's length is read from the broker at each scrape.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from pathlib import Path

from celery import Celery
from celery.exceptions import CPendingDeprecationWarning
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready

from services.common.auth.interceptors import log_auth_mode
from services.common.config import Settings
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE
from services.common.metrics.broker import LifecycleQueueCollector
from services.common.metrics.endpoint import PartMetrics
from services.common.tracing import shutdown_tracing
from services.lifecycle_worker.celery_app import create_worker_app, start_tracing

POOLS = ("prefork", "threads")

# Celery logs two lines per task (received, succeeded); each step already logs one
# structured line with its outcome and duration. Failures are still logged (ERROR).
_PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def run_worker(
    settings: Settings,
    concurrency: int,
    pool: str = "prefork",
    liveness_file: Path | None = None,
    with_monitor: bool = False,
) -> int:
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    for name in _PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Celery warns at every reconnect that its default (finish running steps rather than
    # cancel them) will change; that default is our explicit choice (celery_app).
    warnings.filterwarnings("ignore", category=CPendingDeprecationWarning)
    log_auth_mode(settings, "worker")
    metrics = _worker_metrics(settings, pool)
    app = create_worker_app(settings, liveness_file)
    if pool == "threads":
        start_tracing()  # the steps run in this process (prefork: in each pool child)
    metrics.serve()
    # Started once the worker consumes (threads pool only: services.cli). Imported only
    # then: a worker without it loads none of the monitor's modules.
    monitor = None
    if with_monitor:
        from services.stale_monitor.runner import EmbeddedMonitor

        monitor = EmbeddedMonitor(settings)
        worker_ready.connect(lambda **_: monitor.start(), weak=False)
    try:
        return run_celery_worker(app, "lifecycle", LIFECYCLE_QUEUE, concurrency, pool, settings.log_level)
    finally:
        if monitor is not None:
            monitor.stop(settings.shutdown_grace_s)
        shutdown_tracing()
        metrics.close()


def _worker_metrics(settings: Settings, pool: str) -> PartMetrics:
    """Chosen before the app and its pool exist (prefork: before any child is forked)."""
    addr = settings.worker_metrics_addr
    collectors = [LifecycleQueueCollector(settings.redis_url)] if addr else []
    metrics = PartMetrics("worker", addr, family=pool == "prefork", collectors=collectors)
    if metrics.enabled and pool == "prefork":

        def in_child(**_: object) -> None:
            metrics.forked()

        def child_exiting(**_: object) -> None:
            metrics.process_exited(os.getpid())

        worker_process_init.connect(in_child, weak=False)
        worker_process_shutdown.connect(child_exiting, weak=False)
    return metrics


def run_celery_worker(
    app: Celery, name: str, queue: str, concurrency: int, pool: str, loglevel: str
) -> int:
    """Run a worker of `app` on `queue` in the foreground with the lifecycle worker's
    options. The bench's no-op chain worker runs through here too, so that its limit is
    measured on the same worker."""
    worker = app.Worker(
        hostname=f"{name}-{os.getpid()}@{socket.gethostname()}",
        concurrency=concurrency,
        pool_cls=pool,
        queues=[queue],
        loglevel=loglevel,
        optimization="fair",
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        quiet=True,
    )
    worker.start()
    return worker.exitcode or 0
