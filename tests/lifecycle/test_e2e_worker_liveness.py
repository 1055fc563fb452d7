"""End-to-end: a worker's heartbeat says whether it consumes; a consumer that is
connected but no longer takes steps is told from a healthy one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from services.common.config import Settings
from services.common.lifecycle.health import HEARTBEATS_KEY, WorkerBeat
from services.common.lifecycle.status import OrderStatus
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE, RUN_STEP_TASK, make_sender
from tests.lifecycle.stack import Services, purge_broker, wait_started
from tests.support import Process, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()
        purge_broker(redis_url)


def beat_of(broker: redis.Redis, worker: Process) -> WorkerBeat | None:
    for raw in broker.hvals(HEARTBEATS_KEY):
        beat = WorkerBeat.from_json(raw)
        if beat is not None and beat.node.startswith(f"lifecycle-{worker.pid}@"):
            return beat
    return None


def start_worker(services: Services, liveness: Path) -> Process:
    worker = services.spawn(
        "worker", ["worker", "--concurrency", "1", "--liveness-file", str(liveness)],
        FULFILLMENT_WORKER_STALL_AFTER_S="2",
    )
    wait_started(worker)
    return worker


def test_a_consuming_worker_beats_and_touches_its_liveness_file_and_leaves_cleanly(
    services: Services, broker: redis.Redis, tmp_path: Path
) -> None:
    liveness = tmp_path / "worker.alive"
    worker = start_worker(services, liveness)
    try:
        assert_beats_while_consuming(worker, broker, liveness)
    finally:
        worker.stop()
    assert beat_of(broker, worker) is None, "a stopped worker left its heartbeat behind"


def assert_beats_while_consuming(worker: Process, broker: redis.Redis, liveness: Path) -> None:
    beat = wait_until(lambda: beat_of(broker, worker), timeout=20, what="a heartbeat")
    assert beat.consuming
    assert time.time() - beat.beat_at < 10
    wait_until(liveness.exists, timeout=10, what="the liveness file")
    touched = liveness.stat().st_mtime
    wait_until(lambda: liveness.stat().st_mtime > touched, timeout=10, what="a second touch")


def test_a_worker_connected_but_not_consuming_says_so_and_its_liveness_file_goes_stale(
    services: Services, broker: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    liveness = tmp_path / "worker.alive"
    worker = start_worker(services, liveness)
    beat = wait_until(lambda: beat_of(broker, worker), timeout=20, what="a heartbeat")
    sender = make_sender(Settings.from_env({"REDIS_URL": redis_url}))
    try:
        assert_not_consuming_detected(worker, beat, sender, broker, liveness)
    finally:
        sender.close()
        worker.stop()


def assert_not_consuming_detected(
    worker: Process, beat: WorkerBeat, sender: Celery, broker: redis.Redis, liveness: Path
) -> None:
    replies = sender.control.cancel_consumer(
        LIFECYCLE_QUEUE, destination=[beat.node], reply=True, timeout=10
    )
    assert replies, "the worker did not answer the remote control command"
    # A step waits in the queue that nobody takes.
    sender.send_task(RUN_STEP_TASK, args=[str(uuid.uuid4()), OrderStatus.PENDING.value])
    stalled = wait_until(
        lambda: (b := beat_of(broker, worker)) is not None and not b.consuming and b,
        timeout=30, what="a heartbeat that says not consuming",
    )
    assert stalled.due_waiting == 0
    last_touch = liveness.stat().st_mtime
    time.sleep(3)
    assert liveness.stat().st_mtime == last_touch, "a worker that does not consume still looks alive"
    assert worker.popen.poll() is None
