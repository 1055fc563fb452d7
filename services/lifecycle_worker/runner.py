"""`fulfillment worker`: run the lifecycle worker in the foreground.

SIGTERM is Celery's warm shutdown: stop taking tasks, let running steps finish, hand
prefetched and countdown tasks back to the broker, exit 0.
"""

from __future__ import annotations

import logging
import os
import socket

from services.common.config import Settings
from services.common.lifecycle_tasks import LIFECYCLE_QUEUE
from services.lifecycle_worker.celery_app import create_worker_app

POOLS = ("prefork", "threads")

# Celery logs two lines per task (received, succeeded); each step already logs one
# structured line with its outcome and duration. Failures are still logged (ERROR).
_PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def run_worker(settings: Settings, concurrency: int, pool: str = "prefork") -> int:
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    for name in _PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    app = create_worker_app(settings)
    worker = app.Worker(
        hostname=f"lifecycle-{os.getpid()}@{socket.gethostname()}",
        concurrency=concurrency,
        pool_cls=pool,
        queues=[LIFECYCLE_QUEUE],
        loglevel=settings.log_level,
        optimization="fair",
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        quiet=True,
    )
    worker.start()
    return worker.exitcode or 0
