"""How far behind the lifecycle runs, read from the broker: the signal that tells the stale
monitor a late step from a lost one.

Every worker writes a heartbeat into the broker's Redis every few seconds from its
consumer loop (services.lifecycle_worker.heartbeat): whether it is consuming, how many
step tasks are due but not started in it, and the due time of the oldest of them. Step
messages carry the time they were published (PUBLISHED_AT_HEADER), so the oldest message
still waiting in the queue tells how long a step waits before any worker takes it.

The lag of the lifecycle is the longer of those two waits. A step that is overdue by less
than that lag is merely queued behind others; only a step overdue beyond it was lost.
When no worker is alive and consuming, nothing can be told about any step, and nothing
is judged lost: an outage delays orders, it does not fail them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import redis

from services.common.lifecycle.tasks import LIFECYCLE_QUEUE, PUBLISHED_AT_HEADER

HEARTBEATS_KEY = "fulfillment:lifecycle:heartbeats"
HEARTBEAT_INTERVAL_S = 2.0
# A worker whose last heartbeat is older than this is not counted as alive.
HEARTBEAT_STALE_AFTER_S = 15.0
# Heartbeats of workers gone this long are removed from the broker.
HEARTBEAT_FORGET_AFTER_S = 600.0


@dataclass(frozen=True)
class WorkerBeat:
    """One worker's state as its consumer loop last saw it (times are epoch seconds)."""

    node: str
    beat_at: float
    consuming: bool
    # Step tasks that are due (no countdown left) but not yet running in this worker.
    due_waiting: int
    oldest_due_at: float | None
    last_received_at: float | None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> WorkerBeat | None:
        try:
            fields = json.loads(raw)
            return cls(**fields)
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class LifecycleLag:
    """What the monitor knows about the lifecycle at one instant."""

    live_workers: int
    queue_length: int
    # How long a step now waits beyond its due time before it starts, at most.
    lag_s: float

    @property
    def stalled(self) -> bool:
        """No worker is alive and consuming: no step can run, none can be judged lost."""
        return self.live_workers == 0


def is_consuming(
    now: float,
    queue_length: int,
    due_waiting: int,
    last_received_at: float | None,
    started_at: float,
    stall_after_s: float,
) -> bool:
    """A worker that has nothing due in it while steps wait in the queue should be taking
    them; one that took none for `stall_after_s` (FULFILLMENT_WORKER_STALL_AFTER_S) is
    connected but not consuming."""
    if queue_length == 0 or due_waiting > 0:
        return True
    last = last_received_at if last_received_at is not None else started_at
    return now - last < stall_after_s


def write_beat(client: redis.Redis, beat: WorkerBeat) -> None:
    client.hset(HEARTBEATS_KEY, beat.node, beat.to_json())


def forget_beat(client: redis.Redis, node: str) -> None:
    client.hdel(HEARTBEATS_KEY, node)


def message_due_at(raw: bytes | str) -> float | None:
    """When a step message on the queue was due to run: its ETA, or when it was published
    (None for a message that says neither, e.g. one published by an older version)."""
    try:
        headers = json.loads(raw)["headers"]
    except (ValueError, KeyError, TypeError):
        return None
    return headers_due_at(headers)


def headers_due_at(headers: Mapping[str, Any]) -> float | None:
    eta = headers.get("eta")
    if isinstance(eta, str):
        try:
            return datetime.fromisoformat(eta).timestamp()
        except ValueError:
            return None
    published_at = headers.get(PUBLISHED_AT_HEADER)
    return float(published_at) if isinstance(published_at, int | float) else None


def read_lifecycle_lag(client: redis.Redis, now: float | None = None) -> LifecycleLag:
    """The lag and liveness of the lifecycle from the heartbeats and the queue's oldest
    message (kombu pushes on the left and pops on the right: index -1 is the oldest).
    Raises redis' errors when the broker cannot be read."""
    now = time.time() if now is None else now
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(HEARTBEATS_KEY)
        pipe.llen(LIFECYCLE_QUEUE)
        pipe.lindex(LIFECYCLE_QUEUE, -1)
        beats_raw, queue_length, oldest = pipe.execute()
    beats = [beat for raw in beats_raw.values() if (beat := WorkerBeat.from_json(raw)) is not None]
    live = [b for b in beats if now - b.beat_at < HEARTBEAT_STALE_AFTER_S and b.consuming]
    waits = [now - b.oldest_due_at for b in live if b.oldest_due_at is not None]
    oldest_due = message_due_at(oldest) if oldest is not None else None
    if oldest_due is not None:
        waits.append(now - oldest_due)
    forgotten = [b.node for b in beats if now - b.beat_at > HEARTBEAT_FORGET_AFTER_S]
    if forgotten:
        client.hdel(HEARTBEATS_KEY, *forgotten)
    return LifecycleLag(
        live_workers=len(live), queue_length=int(queue_length), lag_s=max([0.0, *waits])
    )
