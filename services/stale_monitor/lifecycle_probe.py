"""The monitor's view of the lifecycle's lag, read from the broker's Redis."""

from __future__ import annotations

import redis

from services.common.lifecycle.health import LifecycleLag, read_lifecycle_lag
from services.stale_monitor.service import LifecycleUnreadable


class RedisLifecycleProbe:
    def __init__(self, redis_url: str) -> None:
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=2, socket_connect_timeout=2,
            retry_on_error=[redis.ConnectionError],
        )

    def read(self) -> LifecycleLag:
        try:
            return read_lifecycle_lag(self._client)
        except redis.RedisError as exc:
            raise LifecycleUnreadable(str(exc)) from exc

    def close(self) -> None:
        self._client.close()
