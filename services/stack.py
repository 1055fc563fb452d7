"""`fulfillment up`: the whole stack in the foreground, stopped as one on Ctrl-C/SIGTERM.

Order of start: preflight (PostgreSQL, Redis reachable) -> migrate -> inventory -> orders
-> worker -> monitor -> Envoy, each waited on until healthy. Children run in their own
process groups with a parent-death signal, so nothing outlives `up`, even on `kill -9`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import psycopg2
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.channels import dial_addr
from services.common.config import Settings, redact_url
from services.common.db import admin_url
from services.migrations import DatabaseUnreachable, migrate_all

_COLORS = ["36", "35", "33", "32", "34", "31"]
_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """Something the person running `up` must fix; the message says what and how."""


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def terminate_group(popen: subprocess.Popen[bytes], grace: float) -> bool:
    """SIGTERM a process started with start_new_session and everything in its group; True
    when the leader exited within `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGTERM)
    try:
        popen.wait(grace)
    except subprocess.TimeoutExpired:
        return False
    return True


def kill_group(popen: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the process's group, then reap the leader (bounded)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(5)


@dataclass
class Child:
    """One process of the stack. Ready when `check` says so, or, for a process that serves
    nothing to probe, once its log shows `ready_line`."""

    name: str
    args: list[str]
    check: Callable[[], bool] | None = None
    ready_line: str | None = None
    process: subprocess.Popen[bytes] | None = None
    ready_line_seen: bool = False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        return self.ready_line_seen if self.check is None else self.check()


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
    def __init__(self, settings: Settings, workers: int, out: Callable[[str], None]) -> None:
        self.settings = settings
        self.out = out
        self._lock = threading.Lock()
        command = [sys.executable, "-m", "services.cli"]
        gateway_url = f"http://127.0.0.1:{settings.gateway_port}/"
        self.children = [
            Child(
                "inventory", [*command, "serve", "inventory"], grpc_serving(settings.inventory_addr)
            ),
            Child("orders", [*command, "serve", "orders"], grpc_serving(settings.orders_addr)),
            Child(
                "worker", [*command, "worker", "--concurrency", str(workers)], ready_line="worker_ready"
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

    def crashed(self) -> Child | None:
        return next((c for c in self.children if c.process is not None and not c.alive()), None)

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
    stack = Stack(settings, workers, out)
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
            crashed = stack.crashed()
            if crashed is not None:
                raise StackError(f"{crashed.name} exited unexpectedly; stopping the stack")
        out("up: stopping")
        return 0
    except StackError as exc:
        out(f"up: error: {exc}")
        return 1
    finally:
        stack.stop(settings.shutdown_grace_s)
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
