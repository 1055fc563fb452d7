"""The worker's heartbeat: a consumer bootstep that reports, every HEARTBEAT_INTERVAL_S,
whether this worker consumes and how long its due steps have waited.

The beat is taken on the consumer's own event loop, so a consumer that died or hangs
stops beating even though the process lives on; a beat also says "not consuming" when
steps wait in the queue while this worker, with nothing due in it, has taken none for a
while. A small thread writes each beat to the broker's Redis (for the stale monitor,
services.common.lifecycle.health) and, while the worker consumes, touches the liveness
file that Kubernetes and `fulfillment up` watch (`fulfillment worker --liveness-file`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import redis
from celery import bootsteps
from celery.signals import task_received
from celery.worker import state as worker_state

from services.common.lifecycle.health import (
    HEARTBEAT_INTERVAL_S,
    WorkerBeat,
    forget_beat,
    headers_due_at,
    is_consuming,
    write_beat,
)
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE
from services.common.logs import log_event

logger = logging.getLogger("fulfillment.lifecycle.heartbeat")


class ReceivedClock:
    """When this worker last took a message from the broker (main process)."""

    def __init__(self) -> None:
        self.last: float | None = None

    def on_received(self, **_: Any) -> None:
        self.last = time.time()


def due_steps_waiting() -> tuple[int, float | None]:
    """How many step tasks are due in this worker but not running, and the oldest due time.

    Celery's reserved requests are those due (no ETA, or their ETA passed) and not yet
    done; the active ones are running."""
    active = set(worker_state.active_requests)
    waiting = [r for r in tuple(worker_state.reserved_requests) if r not in active]
    due_times = [due for r in waiting if (due := headers_due_at(r.request_dict)) is not None]
    return len(waiting), min(due_times, default=None)


class BeatWriter:
    """Writes beats off the event loop: a broker that does not answer must not stall it."""

    def __init__(self, redis_url: str, liveness_file: Path | None) -> None:
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=2, socket_connect_timeout=2,
            retry_on_error=[redis.ConnectionError],
        )
        self._liveness_file = liveness_file
        self._beats: queue.Queue[WorkerBeat | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="heartbeat-writer", daemon=True)
        self._thread.start()
        self.queue_length = 0

    def submit(self, beat: WorkerBeat) -> None:
        try:
            self._beats.put_nowait(beat)
        except queue.Full:
            pass  # the writer is still busy with the previous beat: the next one will do

    def _run(self) -> None:
        while (beat := self._beats.get()) is not None:
            if beat.consuming and self._liveness_file is not None:
                self._liveness_file.touch()
            try:
                self.queue_length = int(self._client.llen(LIFECYCLE_QUEUE))
                write_beat(self._client, beat)
            except redis.RedisError as exc:
                log_event(logger, "heartbeat_failed", logging.DEBUG, error=str(exc))

    def close(self, node: str) -> None:
        self._beats.put(None)
        self._thread.join(5)
        try:
            forget_beat(self._client, node)
        except redis.RedisError:
            pass  # the monitor stops counting a silent worker after HEARTBEAT_STALE_AFTER_S
        self._client.close()


def heartbeat_step(
    redis_url: str, liveness_file: Path | None, stall_after_s: float
) -> type[bootsteps.StartStopStep]:
    """A consumer bootstep class bound to this worker's broker and liveness file."""
    clock = ReceivedClock()
    task_received.connect(clock.on_received, weak=False)

    class Heartbeat(bootsteps.StartStopStep):
        requires = ("celery.worker.consumer.tasks:Tasks",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.started_at = time.time()
            self.writer: BeatWriter | None = None
            self.timer_entry: Any = None

        def start(self, parent: Any) -> None:
            if self.writer is None:
                self.writer = BeatWriter(redis_url, liveness_file)
            self.beat(parent)
            self.timer_entry = parent.timer.call_repeatedly(
                HEARTBEAT_INTERVAL_S, self.beat, (parent,), priority=10
            )

        def beat(self, parent: Any) -> None:
            assert self.writer is not None
            now = time.time()
            due_waiting, oldest_due_at = due_steps_waiting()
            consuming = is_consuming(
                now, self.writer.queue_length, due_waiting, clock.last, self.started_at,
                stall_after_s,
            )
            self.writer.submit(
                WorkerBeat(parent.hostname, now, consuming, due_waiting, oldest_due_at, clock.last)
            )

        def stop(self, parent: Any) -> None:
            if self.timer_entry is not None:
                self.timer_entry.cancel()
                self.timer_entry = None

        def shutdown(self, parent: Any) -> None:
            self.stop(parent)
            if self.writer is not None:
                self.writer.close(parent.hostname)
                self.writer = None

    return Heartbeat
