"""Where a benchmark runs: a private stack it starts (own database, Redis db number and
ports, every process stopped at the end) or a stack that is already running."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from services.bench.clients import Metadata
from services.bench.rss import process_tree_rss
from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.database.urls import admin_url, libpq_url
from services.common.security import local_token_source
from services.common.tls import channel_credentials
from services.devtools.processes import command_line, descendants, kill_group, terminate_group
from services.devtools.stores import NoFreeRedisDb, claim_redis_db, free_port, private_database
from services.stack_parts import check_postgres, check_redis, grpc_serving, http_answers

_REPO_ROOT = Path(__file__).resolve().parents[2]


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says why."""


_CLI = [sys.executable, "-m", "services.cli"]

@dataclass
class ServiceProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class BenchEnvironment:
    settings: Settings
    env: dict[str, str]
    own_stack: bool
    log_dir: Path
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)
    # Peak RSS seen so far per pid, so processes that exit (recycled pool children) count.
    _peaks: dict[int, dict[str, object]] = field(default_factory=dict)
    _service_of: dict[int, str] = field(default_factory=dict)
    _bearers: dict[Role, Metadata] = field(default_factory=dict)

    def bearer(self, role: Role) -> Metadata:
        """Call metadata for a bench caller of `role`, minted once from the local signing
        key (nothing with authentication off)."""
        if role not in self._bearers:
            source = local_token_source(self.settings, role, f"bench-{role.value}", ttl_s=24 * 3600)
            self._bearers[role] = (("authorization", f"Bearer {source()}"),) if source else ()
        return self._bearers[role]

    @property
    def database_url(self) -> str:
        return libpq_url(self.settings.orders_database_url)

    @property
    def inventory_database_url(self) -> str:
        return libpq_url(self.settings.inventory_database_url)

    def start(
        self,
        name: str,
        args: list[str],
        ready: Callable[[], bool],
        timeout: float = 60,
        helper: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """Start a service of the stack (only when the stack is ours) or a bench helper (a
        limit's server or worker, always ours), and wait until it is ready. `extra_env`
        overrides the stack's variables for this process only."""
        if name in self.processes or (not self.own_stack and not helper):
            return
        if helper:
            self.helpers.add(name)
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                args,
                env={**self.env, **(extra_env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=_REPO_ROOT,
                start_new_session=True,
            )
        process = ServiceProcess(name, popen, log_path)
        self.processes[name] = process
        deadline = time.monotonic() + timeout
        while not ready():
            if not process.alive():
                raise BenchError(f"{name} exited during startup:\n{process.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} was not ready within {timeout:.0f}s:\n{process.log_tail()}")
            time.sleep(0.1)

    def start_services(self) -> None:
        credentials = channel_credentials(self.settings)
        inventory, orders = self.settings.inventory_addr, self.settings.orders_addr
        self.start("inventory", [*_CLI, "serve", "inventory"], grpc_serving(inventory, credentials))
        self.start("orders", [*_CLI, "serve", "orders"], grpc_serving(orders, credentials))

    def start_gateway(self) -> None:
        url = f"http://127.0.0.1:{self.settings.gateway_port}/"
        self.start("gateway", [*_CLI, "gateway"], http_answers(url))

    def start_worker(self, concurrency: int, pool: str = "prefork") -> None:
        self.start(
            "worker",
            [*_CLI, "worker", "--concurrency", str(concurrency), "--pool", pool],
            lambda: "worker_ready" in self.processes["worker"].log_tail(200),
        )

    def stop(self, name: str, timeout: float = 15) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        self.sample_rss()
        if process.alive():
            terminate_group(process.popen, timeout)
        kill_group(process.popen)

    def sample_rss(self) -> None:
        """Record the peak RSS of every process of every service (call it now and then)."""
        for name, root in self._roots().items():
            for entry in process_tree_rss(root):
                pid = int(entry["pid"])  # type: ignore[call-overload]
                self._service_of[pid] = name
                previous = self._peaks.get(pid)
                if previous is None or float(entry["peak_rss_mb"]) >= float(previous["peak_rss_mb"]):  # type: ignore[arg-type]
                    self._peaks[pid] = entry

    def rss_report(self) -> dict[str, dict[str, object]]:
        self.sample_rss()
        report: dict[str, dict[str, object]] = {}
        for pid, entry in sorted(self._peaks.items()):
            service = report.setdefault(self._service_of[pid], {"peak_rss_mb": 0.0, "processes": []})
            service["processes"].append(entry)  # type: ignore[union-attr]
            service["peak_rss_mb"] = max(float(service["peak_rss_mb"]), float(entry["peak_rss_mb"]))  # type: ignore[arg-type]
        return report

    def stack_pids(self) -> list[int]:
        """The root process of every part of the stack (not the bench's helpers)."""
        return list(self._roots().values())

    def _roots(self) -> dict[str, int]:
        if self.own_stack:
            return {
                name: p.popen.pid
                for name, p in self.processes.items()
                if p.alive() and name not in self.helpers
            }
        # An already running stack: find its processes by command line.
        roots: dict[str, int] = {}
        for pid in descendants(1):
            words = command_line(pid).split()
            if "services.cli" in " ".join(words) or any(w.endswith("/fulfillment") for w in words):
                for role in ("inventory", "orders", "worker", "monitor", "gateway"):
                    if role in words and role not in roots:
                        roots[role] = pid
        return roots

    def close(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()


@contextlib.contextmanager
def bench_environment(
    base: Settings, *, target_running: bool, processes: int, log_level: str = "INFO"
) -> Iterator[BenchEnvironment]:
    """Yield an environment; a private one is torn down entirely on the way out."""
    log_dir = Path(tempfile.mkdtemp(prefix="fulfillment-bench-"))
    if target_running:
        yield BenchEnvironment(base, dict(os.environ), own_stack=False, log_dir=log_dir)
        return
    check_postgres(base.database_url)
    check_redis(base.redis_url)
    environment = BenchEnvironment(base, {}, own_stack=True, log_dir=log_dir)
    try:
        try:
            redis_url, release_redis = claim_redis_db(base.redis_url)
        except NoFreeRedisDb:
            raise BenchError("no free Redis db number (1-15) for the benchmark") from None
        environment.cleanups.append(release_redis)
        database = contextlib.ExitStack()
        environment.cleanups.append(database.close)
        database_url = database.enter_context(
            private_database(admin_url(base.database_url), "fulfillment_bench")
        )
        ports = {role: free_port() for role in ("inventory", "orders", "gateway", "admin")}
        # Metrics as configured (on by default; an empty *_METRICS_ADDR turns a part's off,
        # to measure what they cost), but never on the default ports a running `up` holds.
        metrics = {
            part: f"127.0.0.1:{free_port()}" if getattr(base, f"{part}_metrics_addr") else ""
            for part in ("inventory", "orders", "worker", "monitor")
        }
        settings = replace(
            base,
            database_url=database_url,
            inventory_database_url=database_url,
            orders_database_url=database_url,
            redis_url=redis_url,
            inventory_addr=f"127.0.0.1:{ports['inventory']}",
            orders_addr=f"127.0.0.1:{ports['orders']}",
            gateway_port=ports["gateway"],
            gateway_admin_port=ports["admin"],
            inventory_metrics_addr=metrics["inventory"],
            orders_metrics_addr=metrics["orders"],
            worker_metrics_addr=metrics["worker"],
            monitor_metrics_addr=metrics["monitor"],
            step_delay_min_s=0.0,
            step_delay_max_s=0.0,
            server_processes=processes,
            # Its processes get no FULFILLMENT_TLS_* (see env below): plaintext, like theirs.
            tls_cert="",
            tls_key="",
            tls_ca="",
            # Its processes and its load generator share the local signing key, whatever
            # identity provider the environment names: the bench mints its callers' tokens.
            auth_jwks="",
            service_token="",
        )
        environment.settings = settings
        environment.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("FULFILLMENT_", "GATEWAY_"))
                and k
                not in (
                    "DATABASE_URL",
                    "INVENTORY_DATABASE_URL",
                    "ORDERS_DATABASE_URL",
                    "REDIS_URL",
                    "INVENTORY_ADDR",
                    "ORDERS_ADDR",
                )
            },
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "INVENTORY_ADDR": settings.inventory_addr,
            "ORDERS_ADDR": settings.orders_addr,
            "GATEWAY_PORT": str(settings.gateway_port),
            "GATEWAY_ADMIN_PORT": str(settings.gateway_admin_port),
            "INVENTORY_METRICS_ADDR": settings.inventory_metrics_addr,
            "ORDERS_METRICS_ADDR": settings.orders_metrics_addr,
            "WORKER_METRICS_ADDR": settings.worker_metrics_addr,
            "MONITOR_METRICS_ADDR": settings.monitor_metrics_addr,
            "FULFILLMENT_STEP_DELAY_MIN_S": "0",
            "FULFILLMENT_STEP_DELAY_MAX_S": "0",
            "FULFILLMENT_SERVER_PROCESSES": str(processes),
            "FULFILLMENT_LOG_LEVEL": log_level,
            "FULFILLMENT_AUTH": "on" if settings.auth_enabled else "off",
            "FULFILLMENT_AUTH_SIGNING_KEY": settings.auth_signing_key,
            "FULFILLMENT_AUTH_ISSUER": settings.auth_issuer,
            "FULFILLMENT_AUTH_AUDIENCE": settings.auth_audience,
            "FULFILLMENT_AUTH_ROLES_CLAIM": settings.auth_roles_claim,
            "PYTHONUNBUFFERED": "1",
        }
        yield environment
    finally:
        environment.close()
