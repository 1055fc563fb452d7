"""Order change notifications from PostgreSQL LISTEN/NOTIFY, fanned out in-process.

Every transition runs `pg_notify('order_events', order_id)` in its transaction. Each server
process holds ONE dedicated connection that LISTENs on that channel and wakes the watchers
of the named order; watchers are coroutines waiting on an asyncio.Event, so hundreds of them
cost neither threads nor database connections. A notification only says "look again": the
watcher reads what changed itself, so coalesced or lost wake-ups lose nothing.

If the listening connection drops, it is re-opened with backoff and every watcher is woken
to re-read, covering whatever changed while nobody listened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import asyncpg

from services.common.config import redact_url
from services.common.database.failures import CONNECTION_LOST
from services.common.database.urls import libpq_url
from services.common.logs import log_event
from services.orders.adapters.tables import CHANGE_CHANNEL
from services.orders.domain.errors import ChangeFeedUnavailable, WatchInterrupted

logger = logging.getLogger("fulfillment.orders.changes")

LISTENER_APPLICATION_NAME = "fulfillment-orders-listener"
_KEEPALIVE_S = 30.0
_CONNECT_TIMEOUT_S = 5.0
_MAX_RECONNECT_BACKOFF_S = 5.0


class OrderChangeSignal:
    """One watcher's wake-up flag: set by notifications, cleared as the watcher wakes."""

    def __init__(self, feed: PostgresChangeFeed) -> None:
        self._feed = feed
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self) -> bool:
        await self._event.wait()
        # Cleared before the watcher reads, so a change committed during the read wakes
        # it again instead of being missed.
        self._event.clear()
        return not self._feed.stopping


class PostgresChangeFeed:
    def __init__(self, database_url: str, ready_timeout_s: float = 10.0) -> None:
        self._dsn = libpq_url(database_url)
        self._ready_timeout_s = ready_timeout_s
        self._watchers: defaultdict[uuid.UUID, set[OrderChangeSignal]] = defaultdict(set)
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_listening(), name="order-change-listener")

    @property
    def watcher_count(self) -> int:
        return sum(len(signals) for signals in self._watchers.values())

    @contextlib.asynccontextmanager
    async def subscribe(self, order_id: uuid.UUID) -> AsyncIterator[OrderChangeSignal]:
        if self.stopping:
            raise WatchInterrupted()
        try:
            await asyncio.wait_for(self._listening.wait(), self._ready_timeout_s)
        except TimeoutError:
            raise ChangeFeedUnavailable() from None
        signal = OrderChangeSignal(self)
        self._watchers[order_id].add(signal)
        try:
            yield signal
        finally:
            watchers = self._watchers.get(order_id)
            if watchers is not None:
                watchers.discard(signal)
                if not watchers:
                    del self._watchers[order_id]

    def stop_watches(self) -> None:
        """Wake every watcher so its stream ends; called as the server starts to stop."""
        self.stopping = True
        self._wake_all()

    async def close(self) -> None:
        self.stop_watches()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _keep_listening(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._listen_until_lost()
                backoff = 0.1
            except (*CONNECTION_LOST, asyncpg.PostgresError, TimeoutError) as exc:
                log_event(
                    logger, "order_change_listener_failed", logging.WARNING,
                    database=redact_url(self._dsn), error=repr(exc), retry_in_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_RECONNECT_BACKOFF_S)

    async def _listen_until_lost(self) -> None:
        connection = await asyncpg.connect(
            self._dsn,
            timeout=_CONNECT_TIMEOUT_S,
            server_settings={"application_name": LISTENER_APPLICATION_NAME},
        )
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _conn: lost.set())
            await connection.add_listener(CHANGE_CHANNEL, self._on_notification)
            self._listening.set()
            # Whatever changed while nobody listened: let every watcher look again.
            self._wake_all()
            log_event(logger, "order_change_listener_ready", watchers=self.watcher_count)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), _KEEPALIVE_S)
                if not lost.is_set():
                    # A connection that silently died would otherwise go unnoticed.
                    await connection.fetchval("SELECT 1", timeout=_CONNECT_TIMEOUT_S)
            log_event(logger, "order_change_listener_lost", logging.WARNING)
        finally:
            self._listening.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)
            if not connection.is_closed():
                connection.terminate()

    def _on_notification(
        self, _connection: object, _pid: int, _channel: str, payload: str
    ) -> None:
        try:
            order_id = uuid.UUID(payload)
        except ValueError:
            return
        for signal in self._watchers.get(order_id, ()):
            signal.notify()

    def _wake_all(self) -> None:
        for signals in self._watchers.values():
            for signal in signals:
                signal.notify()
