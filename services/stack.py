"""`fulfillment up`: the whole stack in the foreground, stopped as one on Ctrl-C/SIGTERM.

Order of start: preflight (PostgreSQL, Redis reachable) -> migrate -> inventory -> orders
-> worker -> monitor -> Envoy, each waited on until healthy. Children run in their own
process groups with a parent-death signal, so nothing outlives `up`, even on `kill -9`.

Once the stack is up, a part that exits is started again after a backoff that doubles
with each restart in a row (1 s up to 30 s, reset once it has run for a minute), and so
is a worker whose liveness file goes stale (its consumer hung or stopped consuming).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg2
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.channels import dial_addr
from services.common.config import Settings, redact_url
from services.common.database.urls import admin_url
from services.devtools.processes import kill_group, terminate_group
from services.migrations import DatabaseUnreachable, migrate_all

_COLORS = ["36", "35", "33", "32", "34", "31"]
_PR_SET_PDEATHSIG = 1

RESTART_BACKOFF_FIRST_S = 1.0
RESTART_BACKOFF_MAX_S = 30.0
# A part that ran this long before it exited starts its backoff over.
RESTART_BACKOFF_RESET_AFTER_S = 60.0
# The worker touches its liveness file every 2 s while it consumes; this much longer
# without a touch means its consumer is gone or hung (a broker outage this long also
# counts: a fresh worker then reconnects just as well).
WORKER_LIVENESS_STALE_S = 90.0


class StackError(RuntimeError):
    """Something the person running `up` must fix; the message says what and how."""


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One process of the stack. Ready when `check` says so, or, for a process that serves
    nothing to probe, once its log shows `ready_line`."""

    name: str
    args: list[str]
    check: Callable[[], bool] | None = None
    ready_line: str | None = None
    # A file the child touches while it works; stale for longer than liveness_stale_s
    # means it is hung even though its process lives.
    liveness_file: Path | None = None
    liveness_stale_s: float = WORKER_LIVENESS_STALE_S
    process: subprocess.Popen[bytes] | None = None
    ready_line_seen: bool = False
    color: str = ""
    started_at: float = 0.0
    restarts_in_a_row: int = 0
    restart_at: float | None = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        return self.ready_line_seen if self.check is None else self.check()

    def hung(self, now: float) -> bool:
        if self.liveness_file is None or not self.ready_line_seen:
            return False
        try:
            touched = self.liveness_file.stat().st_mtime
        except FileNotFoundError:
            touched = self.started_at
        return now - max(touched, self.started_at) > self.liveness_stale_s

    def next_backoff(self, now: float) -> float:
        if now - self.started_at >= RESTART_BACKOFF_RESET_AFTER_S:
            self.restarts_in_a_row = 0
        backoff = min(RESTART_BACKOFF_FIRST_S * 2**self.restarts_in_a_row, RESTART_BACKOFF_MAX_S)
        self.restarts_in_a_row += 1
        return backoff


def check_postgres(url: str) -> None:

    try:
        psycopg2.connect(admin_url(url), connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
        raise StackError(
            f"PostgreSQL is not reachable at {redact_url(url)} ({reason}).\n"
            "  Start it, e.g. `pg_ctlcluster 15 main start` (Debian), "
            "`brew services start postgresql` (macOS), or\n"
            "  `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16`;\n"
            "  or point DATABASE_URL at a running server."
        ) from None


def check_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StackError(
            f"Redis is not reachable at {redact_url(url)} ({exc}).\n"
            "  Start it, e.g. `redis-server --daemonize yes`, `brew services start redis`, or\n"
            "  `docker run -d -p 6379:6379 redis:7`; or point REDIS_URL at a running server."
        ) from None
    finally:
        client.close()


def grpc_serving(addr: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with grpc.insecure_channel(dial_addr(addr)) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            return reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False

    return check


def http_answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer means the listener is up
        except (urllib.error.URLError, OSError):
            return False

    return check


class Stack:
    def __init__(
        self, settings: Settings, workers: int, out: Callable[[str], None], state_dir: Path
    ) -> None:
        self.settings = settings
        self.out = out
        self._lock = threading.Lock()
        command = [sys.executable, "-m", "services.cli"]
        gateway_url = f"http://127.0.0.1:{settings.gateway_port}/"
        worker_liveness = state_dir / "worker.alive"
        self.children = [
            Child(
                "inventory", [*command, "serve", "inventory"], grpc_serving(settings.inventory_addr)
            ),
            Child("orders", [*command, "serve", "orders"], grpc_serving(settings.orders_addr)),
            Child(
                "worker",
                [
                    *command, "worker", "--concurrency", str(workers),
                    "--liveness-file", str(worker_liveness),
                ],
                ready_line="worker_ready",
                liveness_file=worker_liveness,
            ),
            Child("monitor", [*command, "monitor"], ready_line="monitor_started"),
            Child("gateway", [*command, "gateway"], http_answers(gateway_url)),
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
            preexec_fn=_die_with_parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
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
    try:
        check_postgres(settings.inventory_database_url)
        if settings.orders_database_url != settings.inventory_database_url:
            check_postgres(settings.orders_database_url)
        check_redis(settings.redis_url)
        out("up: migrating")
        try:
            migrate_all(settings)
        except DatabaseUnreachable as exc:
            raise StackError(str(exc)) from None
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
            out(_banner(settings, workers))
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


def _banner(settings: Settings, workers: int) -> str:
    port = settings.gateway_port
    return "\n".join(
        [
            "up: ready",
            f"  gateway (HTTP/JSON + gRPC)  http://127.0.0.1:{port}   e.g. curl http://127.0.0.1:{port}/v1/products",
            f"  gateway admin               http://127.0.0.1:{settings.gateway_admin_port}",
            f"  inventory gRPC              {settings.inventory_addr}",
            f"  orders gRPC                 {settings.orders_addr}",
            f"  worker                      concurrency {workers}, broker {redact_url(settings.redis_url)}",
            f"  monitor                     sweep every {settings.sweep_interval_s:g}s",
            f"  database                    {redact_url(settings.database_url)}",
            "  Ctrl-C stops everything.",
        ]
    )
