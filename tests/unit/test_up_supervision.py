"""`fulfillment up` starts again a part that exited or hung, with a growing backoff."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from services.stack_parts import (
    RESTART_BACKOFF_MAX_S,
    RESTART_BACKOFF_RESET_AFTER_S,
    WORKER_LIVENESS_STALE_S,
    Child,
)

pytestmark = pytest.mark.unit


def test_restarts_in_a_row_double_the_backoff_up_to_a_cap() -> None:
    child = Child("monitor", [])
    now = 1000.0
    backoffs = []
    for _ in range(8):
        child.started_at = now
        backoffs.append(child.next_backoff(now + 1))
        now += 2
    assert backoffs == [1, 2, 4, 8, 16, RESTART_BACKOFF_MAX_S, RESTART_BACKOFF_MAX_S, RESTART_BACKOFF_MAX_S]


def test_a_part_that_ran_a_while_before_it_exited_starts_its_backoff_over() -> None:
    child = Child("monitor", [], started_at=0.0, restarts_in_a_row=5)
    assert child.next_backoff(RESTART_BACKOFF_RESET_AFTER_S + 1) == 1


def test_a_worker_whose_liveness_file_went_stale_is_hung(tmp_path: Path) -> None:
    liveness = tmp_path / "worker.alive"
    now = time.time()
    child = Child("worker", [], liveness_file=liveness, started_at=now - 1000, ready_line_seen=True)
    liveness.touch()
    assert not child.hung(now)
    stale = now - WORKER_LIVENESS_STALE_S - 5
    os.utime(liveness, (stale, stale))
    assert child.hung(now)


def test_a_worker_is_not_judged_before_it_is_ready_or_within_the_grace_after_start(tmp_path: Path) -> None:
    now = time.time()
    starting = Child("worker", [], liveness_file=tmp_path / "none", started_at=now - 1000)
    assert not starting.hung(now)
    fresh = Child("worker", [], liveness_file=tmp_path / "none", started_at=now - 5, ready_line_seen=True)
    assert not fresh.hung(now)
    assert Child("monitor", [], started_at=now - 1000, ready_line_seen=True).hung(now) is False


@pytest.mark.parametrize(("level", "parts_level"), [("WARNING", "INFO"), ("ERROR", "INFO"), ("DEBUG", None)])
def test_up_keeps_the_parts_at_info_so_their_ready_lines_reach_it(
    tmp_path: Path, level: str, parts_level: str | None
) -> None:
    from services.common.config import Settings
    from services.stack import Stack

    stack = Stack(Settings.from_env({"FULFILLMENT_LOG_LEVEL": level}), 2, lambda _line: None, tmp_path)
    inherited = os.environ.get("FULFILLMENT_LOG_LEVEL")
    assert stack.child_env.get("FULFILLMENT_LOG_LEVEL") == (parts_level or inherited)
    assert all(child.ready_line or child.check for child in stack.children)
