"""The liveness probe for containers: fresh file, exit 0; stale or missing, exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.lifecycle_worker.liveness import is_fresh
from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit


def test_a_recent_touch_is_fresh_an_old_one_or_none_is_not(tmp_path: Path) -> None:
    path = tmp_path / "worker.alive"
    now = time.time()
    assert not is_fresh(path, 90, now)
    path.touch()
    os.utime(path, (now - 30, now - 30))
    assert is_fresh(path, 90, now)
    assert not is_fresh(path, 20, now)


def test_the_probe_command_exits_by_freshness(tmp_path: Path) -> None:
    path = tmp_path / "worker.alive"
    probe = [sys.executable, "-m", "services.lifecycle_worker.liveness", str(path), "--max-age", "5"]
    missing = subprocess.run(probe, cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and "missing or older than 5s" in missing.stderr
    path.touch()
    assert subprocess.run(probe, cwd=REPO_ROOT, timeout=30).returncode == 0
