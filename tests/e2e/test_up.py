"""`fulfillment up` stops everything it started, whichever way it is stopped."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from services.devtools.processes import descendants
from tests.support import Process, free_port, fulfillment_command, wait_until

pytestmark = pytest.mark.e2e


def _descendants(pid: int) -> set[int]:
    return set(descendants(pid)) - {pid}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def _start_up(service_env: dict[str, str], tmp_path: Path) -> Process:
    env = {
        **service_env,
        "INVENTORY_ADDR": f"127.0.0.1:{free_port()}",
        "ORDERS_ADDR": f"127.0.0.1:{free_port()}",
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_ADMIN_PORT": str(free_port()),
    }
    process = Process(fulfillment_command("up", "--workers", "1"), env, tmp_path / "up.log")
    try:
        wait_until(
            lambda: "up: ready" in process.output() or process.popen.poll() is not None,
            timeout=90, what="`fulfillment up` to be ready",
        )
        assert "up: ready" in process.output(), process.output()[-3000:]
    except BaseException:
        process.stop()  # the caller's `with` has not begun: nothing else would stop it
        raise
    return process


# SIGTERM takes the same path as SIGINT (Ctrl-C); the e2e stack fixture stops `up` with it.
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGKILL])
def test_up_leaves_no_process_behind(
    service_env: dict[str, str], tmp_path: Path, stop_signal: signal.Signals
) -> None:
    with _start_up(service_env, tmp_path) as up:
        started = _descendants(up.pid)
        # inventory, orders, the worker (the monitor is a thread of it), Envoy (the
        # gateway command execs it)
        commands = " | ".join(_cmdline(pid) for pid in started)
        for part in ("serve inventory", "serve orders", "worker", "envoy"):
            assert part in commands, commands
        os.kill(up.pid, stop_signal)
        if stop_signal != signal.SIGKILL:
            assert up.wait(timeout=60) == 0
            assert "up: stopped" in up.output()
        try:
            wait_until(
                lambda: not [pid for pid in started if _alive(pid)],
                timeout=60, what="every process `up` started to exit",
            )
        except TimeoutError:
            left = {pid: _cmdline(pid) for pid in started if _alive(pid)}
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            pytest.fail(f"still running after `up` stopped: {left}\n{up.output()[-3000:]}")


def test_up_explains_an_unreachable_database(service_env: dict[str, str], tmp_path: Path) -> None:
    env = {**service_env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"}
    with Process(fulfillment_command("up"), env, tmp_path / "up.log") as up:
        assert up.wait(timeout=60) == 1
        output = up.output()
    assert "PostgreSQL is not reachable" in output
    assert "DATABASE_URL" in output
    assert "Traceback" not in output


def test_up_explains_an_unreachable_redis(service_env: dict[str, str], tmp_path: Path) -> None:
    env = {**service_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    with Process(fulfillment_command("up"), env, tmp_path / "up.log") as up:
        assert up.wait(timeout=60) == 1
        output = up.output()
    assert "Redis is not reachable" in output and "REDIS_URL" in output
    assert "Traceback" not in output


def _child_running(up_pid: int, command: str) -> int | None:
    for pid in _descendants(up_pid):
        if f"services.cli {command}" in _cmdline(pid) and _alive(pid):
            return pid
    return None


def _monitor_starts(output: str) -> int:
    """How many times the monitor started inside the worker's process (its lines come
    through the worker's prefix and say service monitor)."""
    return sum(
        1 for line in output.splitlines()
        if line.lstrip().startswith("worker |") and '"service": "monitor"' in line
        and '"msg": "monitor_started"' in line
    )


def test_up_restarts_a_part_that_dies(service_env: dict[str, str], tmp_path: Path) -> None:
    with _start_up(service_env, tmp_path) as up:
        first = _child_running(up.pid, "worker")
        assert first is not None, up.output()[-3000:]
        # The monitor is a thread of the worker's process (tracing is off), speaking as itself.
        assert _child_running(up.pid, "monitor") is None
        wait_until(lambda: _monitor_starts(up.output()) == 1, timeout=30, what="the monitor to start")
        os.kill(first, signal.SIGKILL)

        second = wait_until(
            lambda: (pid := _child_running(up.pid, "worker")) not in (None, first) and pid,
            timeout=30, what="a new worker process",
        )
        output = up.output()
        assert "up: worker exited (code -9); restarting in 1s (restart 1 in a row)" in output
        assert "up: restarting worker" in output
        assert second != first
        wait_until(lambda: _monitor_starts(up.output()) == 2, timeout=30, what="the monitor to start again")
        assert up.popen.poll() is None, "up stopped instead of restarting the part"
