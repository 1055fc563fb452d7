"""`fulfillment up`: the whole stack in the foreground, stopped as one on Ctrl-C/SIGTERM.

Order of start: preflight (PostgreSQL, Redis reachable) -> migrate -> inventory -> orders
-> worker -> monitor -> Envoy, each waited on until it says it is ready. Children run in
their own process groups with a parent-death signal, so nothing outlives `up`, even on
`kill -9`. The preflight, the migrations and the banner run in a one-shot child
(services.stack_prepare), so this supervisor, which lives as long as the stack, loads no
client library at all (~15 MB PSS instead of ~70 MB).

Once the stack is up, a part that exits is started again after a backoff that doubles
with each restart in a row (1 s up to 30 s, reset once it has run for a minute), and so
is a worker whose liveness file goes stale (its consumer hung or stopped consuming).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from services.common.config import Settings, gateway_url
from services.common.tracing.config import TracingConfig
from services.devtools.processes import kill_group, terminate_group
from services.stack_parts import Child, StackError, die_with_parent, http_answers

_COLORS = ["36", "35", "33", "32", "34", "31"]

# The worker's pool under `up`: threads, one process whose slots share its gRPC channels.
# The prefork pool adds a process per slot (~50 MB PSS each, `bench mixed`).
UP_WORKER_POOL = "threads"
SERVING_LINE = '"msg": "serving"'
# The parts announce they are ready at INFO; `up` reads those lines.
_QUIET_LEVELS = ("WARNING", "ERROR", "CRITICAL")


def monitor_in_worker(worker_pool: str) -> bool:
    """Whether the monitor runs as a thread of the worker's process (one Python process
    less, ~55 MB PSS, `bench mixed`): with the threads pool, and while tracing is off, for
    a hosted monitor's spans would carry the worker's service.name."""
    return worker_pool == "threads" and not TracingConfig.from_env().enabled


class Stack:
    def __init__(
        self,
        settings: Settings,
        workers: int,
        out: Callable[[str], None],
        state_dir: Path,
        worker_pool: str = UP_WORKER_POOL,
    ) -> None:
        self.settings = settings
        self.out = out
        self.child_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if settings.log_level in _QUIET_LEVELS:
            self.child_env["FULFILLMENT_LOG_LEVEL"] = "INFO"
        self._lock = threading.Lock()
        command = [sys.executable, "-m", "services.cli"]
        gateway = f"{gateway_url(settings)}/"
        worker_liveness = state_dir / "worker.alive"
        hosted = monitor_in_worker(worker_pool)
        self.children = [
            # A server logs "serving" once it answers and its health says SERVING.
            Child("inventory", [*command, "serve", "inventory"], ready_line=SERVING_LINE),
            Child("orders", [*command, "serve", "orders"], ready_line=SERVING_LINE),
            Child(
                "worker",
                [
                    *command, "worker", "--concurrency", str(workers), "--pool", worker_pool,
                    "--liveness-file", str(worker_liveness), *(["--with-monitor"] if hosted else []),
                ],
                ready_line="worker_ready",
                liveness_file=worker_liveness,
            ),
            *([] if hosted else [Child("monitor", [*command, "monitor"], ready_line="monitor_started")]),
            Child("gateway", [*command, "gateway"], http_answers(gateway)),
        ]

    def _pump(self, child: Child, color: str) -> None:
        assert child.process is not None and child.process.stdout is not None
        prefix = (
            f"\033[{color}m{child.name:>9} |\033[0m "
            if sys.stdout.isatty()
            else f"{child.name:>9} | "
        )
        for raw in child.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if child.ready_line is not None and child.ready_line in line:
                child.ready_line_seen = True
            with self._lock:
                self.out(prefix + line)

    def launch(self, child: Child, color: str) -> None:
        child.color = color
        child.ready_line_seen = False
        child.started_at = time.time()
        child.process = subprocess.Popen(
            child.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
            env=self.child_env,
        )
        threading.Thread(target=self._pump, args=(child, color), daemon=True).start()

    def wait_ready(self, children: list[Child], stop: threading.Event, timeout: float = 90) -> None:
        pending = list(children)
        deadline = time.monotonic() + timeout
        while pending and not stop.is_set():
            for child in list(pending):
                if not child.alive():
                    raise StackError(f"{child.name} exited during startup (see its log lines above)")
                if child.ready():
                    self.out(f"up: {child.name} ready")
                    pending.remove(child)
            if time.monotonic() > deadline:
                names = ", ".join(c.name for c in pending)
                raise StackError(f"{names} did not become ready within {timeout:.0f}s")
            time.sleep(0.1)

    def supervise(self) -> None:
        """Start again what exited or hung, each after its backoff; never blocks long."""
        now = time.time()
        for child in self.children:
            if child.process is None:
                continue
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restart_at = None
                    self.out(f"up: restarting {child.name}")
                    self.launch(child, child.color)
                continue
            if child.alive() and child.hung(now):
                self.out(
                    f"up: {child.name} stopped consuming (no heartbeat for "
                    f"{child.liveness_stale_s:.0f}s); restarting it"
                )
                assert child.process is not None
                if not terminate_group(child.process, self.settings.shutdown_grace_s):
                    kill_group(child.process)
            if not child.alive():
                assert child.process is not None
                code = child.process.poll()
                kill_group(child.process)  # whatever it left in its group goes too
                backoff = child.next_backoff(now)
                child.restart_at = now + backoff
                self.out(
                    f"up: {child.name} exited (code {code}); restarting in "
                    f"{backoff:.0f}s (restart {child.restarts_in_a_row} in a row)"
                )

    def stop(self, grace: float) -> None:
        """SIGTERM in reverse start order, so the front door closes first; then SIGKILL."""
        for child in reversed(self.children):
            if child.alive():
                assert child.process is not None
                if not terminate_group(child.process, grace):
                    self.out(f"up: {child.name} did not stop within {grace:.0f}s; killing it")
        for child in self.children:
            if child.process is not None:
                kill_group(child.process)


def run_up(settings: Settings, workers: int, out: Callable[[str], None] = print) -> int:
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    state_dir = Path(tempfile.mkdtemp(prefix="fulfillment-up-"))
    stack = Stack(settings, workers, out, state_dir)
    banner_file = state_dir / "banner"
    try:
        if settings.log_level in _QUIET_LEVELS:
            out(f"up: the parts log at INFO (FULFILLMENT_LOG_LEVEL={settings.log_level} is for "
                "running them one by one): `up` reads the lines they print once ready")
        if not _prepare(workers, banner_file, stop_requested, out):
            return 0 if stop_requested.is_set() else 1
        # The services, worker and monitor start together (each retries its peers); the
        # gateway last, so `ready` means the front door answers.
        *backends, gateway = stack.children
        for index, child in enumerate(stack.children):
            if child is gateway:
                stack.wait_ready(backends, stop_requested)
                if stop_requested.is_set():
                    break
            out(f"up: starting {child.name}")
            stack.launch(child, _COLORS[index % len(_COLORS)])
        stack.wait_ready([gateway], stop_requested)
        if not stop_requested.is_set():
            out(banner_file.read_text())
        while not stop_requested.wait(0.5):
            stack.supervise()
        out("up: stopping")
        return 0
    except StackError as exc:
        out(f"up: error: {exc}")
        return 1
    finally:
        stack.stop(settings.shutdown_grace_s)
        for leftover in state_dir.iterdir():
            leftover.unlink()
        state_dir.rmdir()
        out("up: stopped")


def _prepare(workers: int, banner_file: Path, stop: threading.Event, out: Callable[[str], None]) -> bool:
    """Preflight, migrations and the banner in a one-shot child (services.stack_prepare),
    its lines relayed as they come; False when it failed (it said why) or `up` was stopped."""
    child = subprocess.Popen(
        [sys.executable, "-m", "services.stack_prepare", str(workers), str(banner_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = child.stdout
    assert lines is not None

    def relay() -> None:
        for raw in lines:
            out(raw.decode(errors="replace").rstrip())

    relaying = threading.Thread(target=relay, daemon=True)
    relaying.start()
    while child.poll() is None:
        if stop.wait(0.1):
            child.terminate()
            child.wait()
    relaying.join(timeout=5)
    return child.returncode == 0 and not stop.is_set()
