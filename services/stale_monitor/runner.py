"""`fulfillment monitor`: sweep every FULFILLMENT_SWEEP_INTERVAL_S until SIGTERM/SIGINT.

A signal lets the current sweep finish its claimed batch (claimed orders are always
handled), then the process exits 0. /metrics (MONITOR_METRICS_ADDR) counts the stale
actions and reads the lifecycle's health from the broker at each scrape.

EmbeddedMonitor runs the same loop as a thread of the worker's process (`fulfillment
worker --with-monitor`, what `up` runs while tracing is off): one Python process less,
~55 MB of PSS (`bench mixed`), the way Celery's `worker -B` hosts beat. Its /metrics stay
its own (its registry, on MONITOR_METRICS_ADDR) and its log lines say `service: monitor`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from prometheus_client import REGISTRY, CollectorRegistry

from services.common.auth.interceptors import log_auth_mode
from services.common.config import Settings
from services.common.lifecycle.grpc_clients import ServiceClients
from services.common.lifecycle.step_publisher import CeleryStepPublisher
from services.common.lifecycle.tasks import make_sender
from services.common.logs import log_event, speak_as
from services.common.metrics.broker import LifecycleHealthCollector
from services.common.metrics.endpoint import PartMetrics
from services.common.tracing import configure_tracing, shutdown_tracing
from services.stale_monitor.lifecycle_probe import RedisLifecycleProbe
from services.stale_monitor.metrics import PrometheusStaleMetrics
from services.stale_monitor.service import (
    MonitorDependencies,
    NoStaleMetrics,
    RememberedLag,
    StaleMetrics,
    SweepPolicy,
    sweep_stale_orders,
)

logger = logging.getLogger("fulfillment.monitor")

# The `service` caller the monitor is to the two services (history names it as its actor).
MONITOR_SUBJECT = "stale-monitor"


class StopRequest:
    """A flag a signal handler may set. Not a threading.Event: Event.set() takes a lock
    that the interrupted main thread may be holding inside Event.wait(), a deadlock."""

    def __init__(self) -> None:
        self.requested = False

    def set(self, *_: object) -> None:
        self.requested = True

    def is_set(self) -> bool:
        return self.requested

    def wait(self, timeout: float, tick: float = 0.1) -> bool:
        """Sleep until `timeout` passes or a stop is requested; True when one was."""
        deadline = time.monotonic() + timeout
        while not self.requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, tick))
        return self.requested


def run_monitor(settings: Settings, stop: StopRequest | None = None, *, hosted: bool = False) -> int:
    """`hosted`: in a thread of another part's process, which owns tracing and the
    process's default metrics registry (EmbeddedMonitor)."""
    stop = stop or StopRequest()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop.set)
    policy = SweepPolicy.from_settings(settings)
    log_auth_mode(settings, "monitor")
    if not hosted:
        configure_tracing("monitor")  # before the channels, which trace their calls
    clients = ServiceClients.connect(settings, subject=MONITOR_SUBJECT)
    sender = make_sender(settings)
    probe = RedisLifecycleProbe(settings.redis_url)
    addr = settings.monitor_metrics_addr
    registry = CollectorRegistry() if hosted else None
    metrics = PartMetrics(
        "monitor", addr, collectors=[LifecycleHealthCollector(settings.redis_url)] if addr else [],
        registry=registry,
    )
    stale_metrics: StaleMetrics = (
        PrometheusStaleMetrics(REGISTRY if registry is None else registry) if addr else NoStaleMetrics()
    )
    deps = MonitorDependencies(
        clients.orders, clients.reservations, CeleryStepPublisher(sender), RememberedLag(probe),
        stale_metrics,
    )
    metrics.serve()
    log_event(
        logger, "monitor_started", sweep_interval_s=settings.sweep_interval_s,
        stale_after_s=policy.stale_after_s, lease_s=policy.lease_s, retries=policy.retries,
    )
    try:
        # The first sweep waits an interval too: a worker started with the monitor (by
        # `up`, say) has beaten by then, and the sweep does not report a stall that is
        # only the stack starting.
        while not stop.wait(settings.sweep_interval_s):
            try:
                sweep_stale_orders(deps, policy, should_stop=stop.is_set)
            except Exception as exc:  # e.g. the orders service is down: try next sweep
                log_event(
                    logger, "sweep_failed", logging.WARNING, error=f"{type(exc).__name__}: {exc}"
                )
    finally:
        clients.close()
        sender.close()
        probe.close()
        metrics.close()
        if not hosted:
            shutdown_tracing()
    log_event(logger, "monitor_stopped")
    return 0


class EmbeddedMonitor:
    """The monitor as a thread of the worker's process (see the module docstring)."""

    THREAD_NAME = "stale-monitor"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_request = StopRequest()
        self.thread = threading.Thread(target=self._run, name=self.THREAD_NAME, daemon=True)

    def _run(self) -> None:
        try:
            run_monitor(self.settings, self.stop_request, hosted=True)
        except Exception:
            # A monitor that cannot start (say its metrics registry) must not go unseen;
            # the worker goes on, and `up` shows the line.
            logger.exception("monitor_failed")

    def start(self) -> None:
        speak_as(self.THREAD_NAME, "monitor")
        self.thread.start()

    def stop(self, grace: float) -> None:
        """Let the current sweep finish its claimed batch, waiting at most `grace` seconds."""
        self.stop_request.set()
        if self.thread.is_alive():
            self.thread.join(grace)
