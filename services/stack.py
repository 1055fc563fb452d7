"""`fulfillment up`: the whole stack in the foreground, stopped as one on Ctrl-C/SIGTERM.

Order of start: preflight (PostgreSQL, Redis reachable) -> migrate -> inventory -> orders
-> worker -> monitor -> Envoy, each waited on until healthy. Children run in their own
process groups with a parent-death signal, so nothing outlives `up`, even on `kill -9`.

Once the stack is up, a part that exits is started again after a backoff that doubles
with each restart in a row (1 s up to 30 s, reset once it has run for a minute), and so
is a worker whose liveness file goes stale (its consumer hung or stopped consuming).
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from services.common.auth.keys import is_local_key_set
from services.common.auth.mint import mint_token
from services.common.auth.principal import Role
from services.common.config import Settings, redact_url
from services.common.tls import channel_credentials
from services.common.tracing.config import TracingConfig
from services.devtools.processes import kill_group, terminate_group
from services.gateway import gateway_url
from services.migrations import DatabaseUnreachable, migrate_all
from services.stack_parts import (
    Child,
    StackError,
    check_postgres,
    check_redis,
    die_with_parent,
    grpc_serving,
    http_answers,
)

_COLORS = ["36", "35", "33", "32", "34", "31"]

# The worker's pool under `up`: threads, one process whose slots share its gRPC channels.
# The prefork pool adds a process per slot (~50 MB PSS each, `bench mixed`).
UP_WORKER_POOL = "threads"


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
        self._lock = threading.Lock()
        command = [sys.executable, "-m", "services.cli"]
        gateway = f"{gateway_url(settings)}/"
        worker_liveness = state_dir / "worker.alive"
        credentials = channel_credentials(settings)
        self.children = [
            Child(
                "inventory",
                [*command, "serve", "inventory"],
                grpc_serving(settings.inventory_addr, credentials),
            ),
            Child("orders", [*command, "serve", "orders"], grpc_serving(settings.orders_addr, credentials)),
            Child(
                "worker",
                [
                    *command, "worker", "--concurrency", str(workers), "--pool", worker_pool,
                    "--liveness-file", str(worker_liveness),
                ],
                ready_line="worker_ready",
                liveness_file=worker_liveness,
            ),
            Child("monitor", [*command, "monitor"], ready_line="monitor_started"),
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
    url = gateway_url(settings)
    return "\n".join(
        [
            "up: ready",
            f"  gateway (HTTP/JSON + gRPC)  {url}",
            *_page_lines(url),
            *_access_lines(settings, url),
            f"  gateway admin               http://127.0.0.1:{settings.gateway_admin_port}",
            f"  inventory gRPC              {settings.inventory_addr}",
            f"  orders gRPC                 {settings.orders_addr}",
            f"  worker                      {UP_WORKER_POOL} pool, concurrency {workers}, "
            f"broker {redact_url(settings.redis_url)}",
            f"  monitor                     sweep every {settings.sweep_interval_s:g}s",
            *_metrics_lines(settings),
            _tracing_line(),
            f"  database                    {redact_url(settings.database_url)}",
            "  Ctrl-C stops everything.",
        ]
    )


def _page_lines(url: str) -> list[str]:
    """The pages the gateway serves without a token (services.gateway_static)."""
    return [
        f"  {'API docs (Swagger UI)':<28}{url}/docs",
        f"  {'operator console':<28}{url}/console/",
        f"  {'OpenAPI document':<28}{url}/openapi.json",
    ]


def _tracing_line() -> str:
    """Where every part sends its spans (README: Observe it), or how to turn tracing on."""
    config = TracingConfig.from_env()
    if not config.enabled:
        return "  traces                      off (set OTEL_EXPORTER_OTLP_ENDPOINT to send them)"
    otlp = config.otlp
    where = [
        name if otlp is None or name != "otlp"
        else f"OTLP/gRPC to {'https' if otlp.tls else 'http'}://{otlp.host}:{otlp.port}"
        for name in config.exporters
    ]
    return f"  traces                      {', '.join(where)}"


def _metrics_lines(settings: Settings) -> list[str]:
    """Where Prometheus scrapes each part (an empty *_METRICS_ADDR turns one off)."""
    parts = [
        ("inventory", settings.inventory_metrics_addr, "INVENTORY_METRICS_ADDR"),
        ("orders", settings.orders_metrics_addr, "ORDERS_METRICS_ADDR"),
        ("worker", settings.worker_metrics_addr, "WORKER_METRICS_ADDR"),
        ("monitor", settings.monitor_metrics_addr, "MONITOR_METRICS_ADDR"),
    ]
    return [
        f"  {name + ' metrics':<28}{f'http://{addr}/metrics' if addr else f'off ({variable} is empty)'}"
        for name, addr, variable in parts
    ] + [
        f"  {'gateway metrics':<28}http://127.0.0.1:{settings.gateway_admin_port}/stats/prometheus",
    ]


ADMIN_TOKEN_TTL_S = 12 * 3600


def _access_lines(settings: Settings, url: str) -> list[str]:
    """How to call the stack: a ready-to-paste admin token and curl line, or why not."""
    if not settings.auth_enabled:
        return [
            "  authentication              OFF (FULFILLMENT_AUTH=off): every call is accepted "
            "without a token, as an admin; for local experiments only",
            f"  try it                      curl {url}/v1/products",
        ]
    if not is_local_key_set(settings):
        return [
            "  authentication              tokens from the identity provider of "
            "FULFILLMENT_AUTH_JWKS (iss "
            f"{settings.auth_issuer}, aud {settings.auth_audience})",
        ]
    token = mint_token(settings, Role.ADMIN, f"admin-{getpass.getuser()}", ADMIN_TOKEN_TTL_S)
    return [
        f"  admin token (12 h)          export TOKEN={token}",
        "                              (paste it into the console's sign-in or Swagger UI's Authorize;",
        "                              `fulfillment token --role admin|customer` prints others)",
        f'  try it                      curl -H "Authorization: Bearer $TOKEN" {url}/v1/products',
    ]
