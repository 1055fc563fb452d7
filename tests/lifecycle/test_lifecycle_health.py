"""The lifecycle's lag and liveness as the monitor reads them from the broker's Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from services.common.lifecycle.health import (
    HEARTBEAT_FORGET_AFTER_S,
    HEARTBEAT_STALE_AFTER_S,
    HEARTBEATS_KEY,
    WorkerBeat,
    is_consuming,
    message_due_at,
    read_lifecycle_lag,
    write_beat,
)
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE, PUBLISHED_AT_HEADER
from services.devtools.stores import claim_redis_db
from tests.conftest import REDIS_BASE

pytestmark = pytest.mark.integration

NOW = 1_800_000_000.0


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    """A Redis db of its own: the lifecycle tests' workers beat into the session's db."""
    url, release = claim_redis_db(REDIS_BASE)
    client = redis.Redis.from_url(url)
    try:
        yield client
    finally:
        client.close()
        release()


def beat(
    node: str, age_s: float, consuming: bool = True, oldest_due_age_s: float | None = None
) -> WorkerBeat:
    oldest = None if oldest_due_age_s is None else NOW - oldest_due_age_s
    return WorkerBeat(node, NOW - age_s, consuming, 0 if oldest is None else 3, oldest, NOW - 1)


def step_message(**headers: object) -> str:
    return json.dumps({"body": "", "headers": {"id": "t", **headers}, "properties": {}})


def test_no_heartbeat_means_no_live_worker_and_a_stalled_lifecycle(broker: redis.Redis) -> None:
    lag = read_lifecycle_lag(broker, NOW)
    assert (lag.live_workers, lag.queue_length, lag.lag_s, lag.stalled) == (0, 0, 0.0, True)


def test_only_fresh_consuming_workers_count_as_live(broker: redis.Redis) -> None:
    write_beat(broker, beat("fresh", age_s=1))
    write_beat(broker, beat("silent", age_s=HEARTBEAT_STALE_AFTER_S + 1))
    write_beat(broker, beat("not-consuming", age_s=1, consuming=False))

    lag = read_lifecycle_lag(broker, NOW)

    assert (lag.live_workers, lag.stalled) == (1, False)


def test_lag_is_the_longest_wait_of_a_due_step_in_a_worker_or_in_the_queue(broker: redis.Redis) -> None:
    write_beat(broker, beat("a", age_s=1, oldest_due_age_s=40))
    write_beat(broker, beat("b", age_s=1, oldest_due_age_s=7))
    broker.lpush(LIFECYCLE_QUEUE, step_message(**{PUBLISHED_AT_HEADER: NOW - 25}))
    assert read_lifecycle_lag(broker, NOW).lag_s == pytest.approx(40)

    broker.lpush(LIFECYCLE_QUEUE, step_message(**{PUBLISHED_AT_HEADER: NOW - 1}))
    broker.rpush(LIFECYCLE_QUEUE, step_message(**{PUBLISHED_AT_HEADER: NOW - 90}))  # the oldest
    lag = read_lifecycle_lag(broker, NOW)
    assert (lag.lag_s, lag.queue_length) == (pytest.approx(90), 3)


def test_a_step_whose_countdown_has_not_run_out_is_not_late(broker: redis.Redis) -> None:
    write_beat(broker, beat("a", age_s=1))
    eta = datetime.fromtimestamp(NOW + 30, UTC).isoformat()
    broker.lpush(LIFECYCLE_QUEUE, step_message(eta=eta, **{PUBLISHED_AT_HEADER: NOW - 5}))
    assert read_lifecycle_lag(broker, NOW).lag_s == 0.0


def test_heartbeats_of_long_gone_workers_are_forgotten(broker: redis.Redis) -> None:
    write_beat(broker, beat("gone", age_s=HEARTBEAT_FORGET_AFTER_S + 1))
    write_beat(broker, beat("here", age_s=1))
    read_lifecycle_lag(broker, NOW)
    assert set(broker.hkeys(HEARTBEATS_KEY)) == {b"here"}


def test_message_due_time_comes_from_its_eta_or_its_publication() -> None:
    eta = datetime.fromtimestamp(NOW, UTC).isoformat()
    assert message_due_at(step_message(eta=eta, **{PUBLISHED_AT_HEADER: 1.0})) == pytest.approx(NOW)
    assert message_due_at(step_message(**{PUBLISHED_AT_HEADER: 12.5})) == 12.5
    assert message_due_at(step_message()) is None
    assert message_due_at(b"not json") is None
    assert message_due_at(step_message(eta="tomorrow")) is None


@pytest.mark.parametrize(
    ("queue_length", "due_waiting", "last_received_ago", "consuming"),
    [
        (0, 0, 1000.0, True),  # nothing to take
        (5, 2, 1000.0, True),  # busy with what it has
        (5, 0, 10.0, True),  # took a message lately
        (5, 0, 61.0, False),  # steps wait, it has nothing, took nothing for a minute
    ],
)
def test_a_worker_with_nothing_due_that_takes_no_waiting_step_is_not_consuming(
    queue_length: int, due_waiting: int, last_received_ago: float, consuming: bool
) -> None:
    last_received = NOW - last_received_ago
    assert is_consuming(NOW, queue_length, due_waiting, last_received, NOW - 5000, 60.0) is consuming


def test_a_worker_that_never_took_a_message_is_judged_from_its_start() -> None:
    assert is_consuming(NOW, 3, 0, None, NOW - 10, 60.0)
    assert not is_consuming(NOW, 3, 0, None, NOW - 61, 60.0)
