"""Test support: real servers on port 0, subprocesses that are always stopped, waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.config import Settings
from services.common.logs import JsonFormatter
from services.common.server import RunningServer, ServerSecurity, ServiceParts, start_server
from services.devtools import stores
from services.devtools.processes import kill_group
from services.devtools.stores import free_port  # noqa: F401 - re-exported for tests

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get(
    "FULFILLMENT_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
T = TypeVar("T")


def private_database(prefix: str) -> contextlib.AbstractContextManager[str]:
    """A new database `<prefix>_<random>` with every schema migrated; dropped afterwards."""
    return stores.private_database(ADMIN_DSN, prefix)


@contextlib.contextmanager
def private_stores(env: dict[str, str], prefix: str) -> Iterator[dict[str, str]]:
    """`env` with a database and a Redis db of their own, for a stack that must see only
    its own traffic: another stack alive meanwhile (the e2e package's) would otherwise
    share its queue (its worker taking our steps to its own orders service) and its
    stale monitor would claim our orders."""
    redis_url, release = stores.claim_redis_db(env["REDIS_URL"])
    try:
        with private_database(prefix) as database_url:
            yield {**env, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    finally:
        release()


def in_process_settings(
    signing_key: str, database_url: str, redis_url: str, shutdown_grace_s: float = 2.0
) -> Settings:
    """Configuration for in-process servers: the given stores, port 0, no step delays,
    tokens signed with the test run's key."""
    return replace(
        Settings.from_env({"FULFILLMENT_AUTH_SIGNING_KEY": signing_key}),
        database_url=database_url,
        inventory_database_url=database_url,
        orders_database_url=database_url,
        redis_url=redis_url,
        inventory_addr="127.0.0.1:0",
        orders_addr="127.0.0.1:0",
        step_delay_min_s=0.0,
        step_delay_max_s=0.0,
        shutdown_grace_s=shutdown_grace_s,
    )


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # the condition may raise until the system is ready
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}: {last_error!r}")


class BackgroundServer:
    """A real grpc.aio server on a loopback port, run on its own event loop thread."""

    def __init__(
        self,
        build: Callable[[], Awaitable[ServiceParts]],
        security: ServerSecurity | None = None,
    ) -> None:
        self._build = build
        # TLS and the authentication interceptor (tests.auth.secured_by); None:
        # plaintext and no authentication (a server with nothing but health, say).
        self._security = security
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.running: RunningServer | None = None

    @property
    def addr(self) -> str:
        assert self.running is not None
        return f"127.0.0.1:{self.running.port}"

    def start(self) -> BackgroundServer:
        """Start the server; if it cannot start, its loop thread is stopped again."""
        self._thread.start()
        try:
            self.running = self.call(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    async def _start(self) -> RunningServer:
        return await start_server("127.0.0.1:0", await self._build(), self._security)

    def call(self, coro: Awaitable[T], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop (e.g. to reach its engine) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    def stop(self, grace: float = 1.0) -> None:
        """Stop the server and its loop; a second call does nothing."""
        if self._loop.is_closed():
            return
        if self.running is not None:
            self.call(self.running.stop(grace))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Process:
    """A child process whose output goes to a log file; always killed on exit."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=REPO_ROOT, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, then SIGKILL of the whole process group if it does not exit in time."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.popen)
        self._log.close()
        return self.popen.returncode

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fulfillment_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", *args]


def health_status(addr: str, service: str = "", timeout: float = 1.0) -> Any:
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status


def wait_healthy(addr: str, timeout: float = 20.0, service: str = "") -> None:
    wait_until(
        lambda: health_status(addr, service) == health_pb2.HealthCheckResponse.SERVING,
        timeout=timeout, what=f"{addr} to report SERVING",
    )


class JsonLines(logging.Handler):
    """Keeps what a part logs, each line as JsonFormatter writes it, parsed back."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter(service))
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))
