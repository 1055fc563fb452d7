"""Series read from the broker's Redis when Prometheus scrapes, so they are as fresh as
the scrape and cost nothing between scrapes: the lifecycle queue's length (worker and
monitor) and the lifecycle's health as the monitor judges it (live workers, lag).

Each read is bounded by a short timeout; when the broker cannot be read the series are
left out of that scrape (absent, not a stale or made-up number) and
fulfillment_broker_up says 0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.common.lifecycle.health import read_lifecycle_lag
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE

logger = logging.getLogger("fulfillment.metrics")

READ_TIMEOUT_S = 1.0

QUEUE_LENGTH = "fulfillment_lifecycle_queue_length"
QUEUE_LENGTH_HELP = "Step messages waiting in the broker's lifecycle queue (LLEN), read at scrape time."


def _client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(
        redis_url, socket_timeout=READ_TIMEOUT_S, socket_connect_timeout=READ_TIMEOUT_S
    )


def _broker_up(up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "fulfillment_broker_up", "1 when this scrape could read the broker's Redis, else 0.",
        value=1.0 if up else 0.0,
    )


class LifecycleQueueCollector(Collector):
    """fulfillment_lifecycle_queue_length, for the worker."""

    def __init__(self, redis_url: str) -> None:
        self._client = _client(redis_url)

    def collect(self) -> Iterable[Metric]:
        try:
            length = self._client.llen(LIFECYCLE_QUEUE)
        except redis.RedisError as exc:
            logger.debug("broker unreadable for /metrics: %s", exc)
            return [_broker_up(False)]
        return [GaugeMetricFamily(QUEUE_LENGTH, QUEUE_LENGTH_HELP, value=float(length)), _broker_up(True)]

    def close(self) -> None:
        self._client.close()


class LifecycleHealthCollector(Collector):
    """The queue length plus what the stale monitor reads before each sweep: workers alive
    and consuming, and how long a due step now waits before one starts it."""

    def __init__(self, redis_url: str) -> None:
        self._client = _client(redis_url)

    def collect(self) -> Iterable[Metric]:
        try:
            lag = read_lifecycle_lag(self._client)
        except redis.RedisError as exc:
            logger.debug("broker unreadable for /metrics: %s", exc)
            return [_broker_up(False)]
        return [
            GaugeMetricFamily(QUEUE_LENGTH, QUEUE_LENGTH_HELP, value=float(lag.queue_length)),
            GaugeMetricFamily(
                "fulfillment_lifecycle_live_workers",
                "Workers whose heartbeat is fresh and who are consuming the lifecycle queue.",
                value=float(lag.live_workers),
            ),
            GaugeMetricFamily(
                "fulfillment_lifecycle_lag_seconds",
                "How long a due step now waits before a worker starts it (the longest wait "
                "seen in the queue and in the workers' heartbeats).",
                value=lag.lag_s,
            ),
            _broker_up(True),
        ]

    def close(self) -> None:
        self._client.close()
