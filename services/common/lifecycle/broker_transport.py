"""kombu's Redis transport, with one guard on its reconnect path.

When the broker goes away twice in a short time, Celery closes the lost connection, and
closing its channel restores the unacknowledged messages through a new Redis client. By
then kombu has already detached that connection from its transport, so building the
client's parameters fails with `AttributeError: 'NoneType' object has no attribute
'hostname'` (kombu #970 and #582, celery #10205). Celery counts an AttributeError as
unrecoverable and the worker stops consuming for good. Here the same situation raises
redis' ConnectionError, one of the transport's connection errors, which Celery ignores
while it replaces the connection: the worker reconnects and goes on. The messages that
could not be put back stay in Redis' unacked set, which any worker restores after the
visibility timeout; steps are idempotent and the stale monitor covers a broker that lost
them altogether.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

TRANSPORT = f"{__name__}:Transport"


def use_guarded_redis_transport() -> None:
    """Make redis:// broker URLs of this process use the guarded transport (kombu resolves
    the URL's scheme through this table), so that logs still show the broker as redis://."""
    TRANSPORT_ALIASES["redis"] = TRANSPORT


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError(
                "the broker connection was closed before its unacknowledged messages "
                "could be restored"
            )
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
