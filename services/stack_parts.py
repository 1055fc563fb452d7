"""The parts `fulfillment up` runs and how it judges them: each child process with its
readiness and liveness checks and its restart backoff, and the preflight checks of the
stores the stack needs.

The supervisor that stays for the stack's lifetime imports this module, so it loads
nothing heavy at import: the checks that speak gRPC, PostgreSQL or Redis import their
client where they run (`fulfillment up` runs them in a one-shot child,
services.stack_prepare; the bench runs them in its own process)."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services.common.config import redact_url

if TYPE_CHECKING:
    import grpc

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


def die_with_parent() -> None:
    """In a child before exec: SIGTERM it when `up` dies, even by kill -9."""
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
    import psycopg2

    from services.common.database.urls import admin_url

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
    import redis

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


def grpc_serving(addr: str, credentials: grpc.ChannelCredentials | None = None) -> Callable[[], bool]:
    """A readiness check of grpc.health.v1 at `addr`, over TLS when given credentials."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from services.common.channels import dial_addr

    def check() -> bool:
        try:
            target = dial_addr(addr)
            with (
                grpc.insecure_channel(target) if credentials is None
                else grpc.secure_channel(target, credentials)
            ) as channel:
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
