"""The limit for `lifecycle`: chains of 4 no-op Celery tasks, each publishing the next,
on the same broker, with the lifecycle worker's Celery settings, pool and concurrency.

The fourth task of a chain records its end time in Redis, which is all the bench reads.
Run the worker as `python -m services.bench.noop_chain REDIS_URL CONCURRENCY [POOL]`.
"""

from __future__ import annotations

import sys
import time

import redis
from celery import Celery
from celery.signals import worker_ready

from services.common.config import Settings
from services.common.lifecycle.tasks import celery_config
from services.lifecycle_worker.celery_app import PREFETCH_MULTIPLIER
from services.lifecycle_worker.runner import run_celery_worker

NOOP_QUEUE = "fulfillment.bench.noop"
NOOP_TASK = "fulfillment.bench.noop_step"
CHAIN_LENGTH = 4
DONE_KEY = "fulfillment:bench:noop-done"


def create_noop_app(redis_url: str) -> Celery:
    app = Celery("fulfillment-bench-noop")
    app.conf.update(celery_config(Settings(redis_url=redis_url)))
    app.conf.update(
        task_default_queue=NOOP_QUEUE,
        task_routes={NOOP_TASK: {"queue": NOOP_QUEUE}},
        worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_redirect_stdouts=False,
    )
    done = redis.Redis.from_url(redis_url)

    @app.task(name=NOOP_TASK)
    def noop_step(chain_id: str, step: int) -> None:
        if step < CHAIN_LENGTH:
            app.send_task(NOOP_TASK, args=[chain_id, step + 1])
        else:
            done.rpush(DONE_KEY, f"{chain_id} {time.time()}")

    return app


def main(argv: list[str]) -> int:
    redis_url, concurrency = argv[0], int(argv[1])
    pool = argv[2] if len(argv) > 2 else "prefork"
    app = create_noop_app(redis_url)
    worker_ready.connect(lambda **_: print("noop_worker_ready", flush=True), weak=False)
    return run_celery_worker(app, "bench-noop", NOOP_QUEUE, concurrency, pool, "WARNING")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
