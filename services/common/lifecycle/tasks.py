"""The message contract between task senders (orders service, stale monitor) and the worker.

Senders publish by task name, so neither the orders service nor the monitor imports the
worker. The worker registers its task under the same name.
"""

from __future__ import annotations

from celery import Celery

from services.common.config import Settings
from services.common.lifecycle.broker_transport import use_guarded_redis_transport

RUN_STEP_TASK = "fulfillment.lifecycle.run_step"
LIFECYCLE_QUEUE = "fulfillment.lifecycle"
# A custom message header with the epoch time a step message was published: with its ETA
# it tells how long the step has been due (services.common.lifecycle.health).
PUBLISHED_AT_HEADER = "published_at"

# Far above any countdown we use (step delays are seconds), so Redis never redelivers a
# task that is merely waiting for its ETA (Celery's Redis visibility timeout trap).
VISIBILITY_TIMEOUT_S = 3600


def celery_config(settings: Settings) -> dict[str, object]:
    use_guarded_redis_transport()
    return {
        "broker_url": settings.redis_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_default_queue": LIFECYCLE_QUEUE,
        "task_routes": {RUN_STEP_TASK: {"queue": LIFECYCLE_QUEUE}},
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
        "broker_connection_retry_on_startup": True,
        # A sender must not hang when the broker is down: the order is already committed
        # and the stale monitor re-drives it, so fail fast and move on.
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5,
        },
        "broker_connection_timeout": 2,
        "worker_hijack_root_logger": False,
    }


def make_sender(settings: Settings) -> Celery:
    """A Celery app used only to publish step tasks by name."""
    app = Celery("fulfillment-sender")
    app.conf.update(celery_config(settings))
    return app
