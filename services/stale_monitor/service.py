"""sweep_stale_orders: claim overdue orders and re-drive their step or fail them.

A late step is not a lost one. Each sweep first reads the lifecycle's lag (how long a due
step now waits before a worker starts it: services.common.lifecycle.health) and claims
only orders overdue by more than FULFILLMENT_STALE_AFTER_S plus that lag; a re-driven
step gets the lag on top of its lease, so while it waits in the queue its order is not
claimed again (at most one re-drive per order is outstanding, and re-drives never add
more to the queue than the orders actually late). With no worker alive and consuming, or
the broker unreadable, nothing is claimed: the orders wait, and the sweep says so.

An order is failed as stale only after its re-drives were given that time and did not
move it, and never while the inventory is not serving (the step would have failed for
that reason, not because it was lost): then it is re-driven again instead.

Concurrent monitors are safe because ClaimStaleOrders locks with FOR UPDATE SKIP LOCKED
and pushes each claimed order's due time forward by the lease in the same transaction:
an order is handed to exactly one sweep, and is not due again before lease + stale_after.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from services.common.config import Settings
from services.common.lifecycle.health import LifecycleLag
from services.common.lifecycle.ports import (
    IllegalTransition,
    OrderNotFound,
    OrdersGateway,
    OrderSnapshot,
    PublishFailed,
    ReservationsGateway,
    StaleOrder,
    StepPublisher,
)
from services.common.lifecycle.status import OrderStatus
from services.common.lifecycle.timing import step_due_in
from services.common.logs import log_event
from services.common.tracing import span
from services.stale_monitor import domain

logger = logging.getLogger("fulfillment.monitor")

BATCH_LIMIT = 100
# Claimed orders handled at once (each is one or two gRPC calls).
HANDLERS = 8
# Bounds one sweep even if every batch comes back full, so a stop request is seen.
MAX_BATCHES_PER_SWEEP = 100


@dataclass(frozen=True)
class SweepPolicy:
    stale_after_s: float
    lease_s: float
    retries: int
    batch_limit: int = BATCH_LIMIT
    max_batches: int = MAX_BATCHES_PER_SWEEP

    @classmethod
    def from_settings(cls, settings: Settings) -> SweepPolicy:
        # A re-driven step is published at once; the lease gives it as long as a normal
        # step (its longest delay plus the margin) before the order may count as due again.
        return cls(
            stale_after_s=settings.stale_after_s,
            lease_s=step_due_in(settings.step_delay_max_s),
            retries=settings.stale_retries,
        )


class StaleOutcome(enum.Enum):
    REDRIVEN = "redriven"
    FAILED = "failed"
    MOVED_ON = "moved_on"
    ERROR = "errors"


@dataclass
class SweepReport:
    claimed: int = 0
    redriven: int = 0
    failed: int = 0
    moved_on: int = 0
    errors: int = 0
    lag_s: float = 0.0
    # Why nothing was claimed, when the lifecycle could not be judged.
    skipped: str = ""

    def count(self, outcome: StaleOutcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def fields(self) -> dict[str, Any]:
        return dict(vars(self))


class LifecycleUnreadable(Exception):
    """The broker cannot be read, so the lifecycle's lag is unknown."""


class LifecycleProbe(Protocol):
    def read(self) -> LifecycleLag:
        """The lifecycle's lag and live workers now; raises LifecycleUnreadable."""


# How long a lag once seen is still believed. A backlog drains step by step, but what the
# broker shows of it can vanish at once: when a worker takes the last queued steps, they
# wait inside it, and its heartbeat (every 2 s) has not said so yet.
LAG_MEMORY_S = 30.0


class RememberedLag:
    """A probe whose lag is the longest it read in the last `memory_s` seconds."""

    def __init__(
        self, probe: LifecycleProbe, memory_s: float = LAG_MEMORY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._memory_s = memory_s
        self._clock = clock
        self._seen: deque[tuple[float, float]] = deque()

    def read(self) -> LifecycleLag:
        lag = self._probe.read()
        now = self._clock()
        self._seen.append((now, lag.lag_s))
        while self._seen and now - self._seen[0][0] > self._memory_s:
            self._seen.popleft()
        return replace(lag, lag_s=max(seen for _, seen in self._seen))


class StaleMetrics(Protocol):
    def stale_order_handled(self, action: str) -> None:
        """A stale order "redriven" (its step published again) or "failed"."""


class NoStaleMetrics:
    """Metrics off (MONITOR_METRICS_ADDR empty): nothing is counted."""

    def stale_order_handled(self, action: str) -> None:
        pass


@dataclass(frozen=True)
class MonitorDependencies:
    orders: OrdersGateway
    reservations: ReservationsGateway
    publisher: StepPublisher
    lifecycle: LifecycleProbe
    metrics: StaleMetrics = field(default_factory=NoStaleMetrics)


def sweep_stale_orders(
    deps: MonitorDependencies,
    policy: SweepPolicy,
    should_stop: Callable[[], bool] = lambda: False,
) -> SweepReport:
    """Claim batches until one comes back short; every claimed order is handled."""
    report = SweepReport()
    try:
        lifecycle = deps.lifecycle.read()
    except LifecycleUnreadable as exc:
        report.skipped = "broker_unreadable"
        log_event(logger, "sweep_skipped", logging.WARNING, reason=report.skipped, error=str(exc))
        return report
    report.lag_s = round(lifecycle.lag_s, 3)
    if lifecycle.stalled:
        report.skipped = "no_live_worker"
        log_event(
            logger, "lifecycle_stalled", logging.WARNING, queue_length=lifecycle.queue_length,
            detail="no worker is alive and consuming; orders wait, none is re-driven or failed",
        )
        return report
    failing = FailingGate(deps.reservations)
    # Claimed orders are handled side by side: a claim is a lease, and a batch handled
    # one order after the other could outlast it, letting another monitor claim (and
    # re-drive) an order a second time.
    with ThreadPoolExecutor(HANDLERS, thread_name_prefix="stale") as handlers:
        for _ in range(policy.max_batches):
            batch = deps.orders.claim_stale_orders(
                policy.batch_limit,
                policy.stale_after_s + lifecycle.lag_s,
                policy.lease_s + lifecycle.lag_s,
            )
            report.claimed += len(batch)
            for outcome in handlers.map(
                lambda stale: handle_stale_order(stale, deps, policy, failing), batch
            ):
                report.count(outcome)
                if outcome in (StaleOutcome.REDRIVEN, StaleOutcome.FAILED):
                    deps.metrics.stale_order_handled(outcome.value)
            if len(batch) < policy.batch_limit or should_stop():
                break
    if report.claimed:
        log_event(logger, "sweep", **report.fields())
    return report


class FailingGate:
    """Whether stale orders may be failed in this sweep: asked of the inventory once, and
    only when some order has used up its re-drives."""

    def __init__(self, reservations: ReservationsGateway) -> None:
        self._reservations = reservations
        self._lock = threading.Lock()
        self._reason: str | None = None

    def cannot_fail_because(self) -> str:
        with self._lock:
            if self._reason is None:
                self._reason = "" if self._reservations.is_serving() else "inventory not serving"
            return self._reason


def handle_stale_order(
    stale: StaleOrder, deps: MonitorDependencies, policy: SweepPolicy, failing: FailingGate
) -> StaleOutcome:
    """One claimed order, in a trace of its own when tracing is on: the re-driven step's
    message carries it, so the step the worker then runs joins it."""
    order = stale.order
    with span(
        "stale_order", order_id=order.order_id, step=order.status.value,
        stale_claims=stale.stale_claims,
    ) as stale_span:
        outcome = _handle_stale_order(stale, deps, policy, failing)
        stale_span.set_attribute("action", outcome.value)
    return outcome


def _handle_stale_order(
    stale: StaleOrder, deps: MonitorDependencies, policy: SweepPolicy, failing: FailingGate
) -> StaleOutcome:
    order = stale.order
    try:
        cannot_fail = failing.cannot_fail_because() if stale.stale_claims > policy.retries else ""
        decision = domain.decide_stale(stale.stale_claims, policy.retries, cannot_fail)
        if isinstance(decision, domain.Redrive):
            return _redrive(order, decision, deps)
        return _fail(order, decision, deps)
    except Exception as exc:  # one order's trouble must not end the sweep for the others
        log_event(
            logger, "stale_error", logging.WARNING,
            order_id=order.order_id, status=order.status, error=f"{type(exc).__name__}: {exc}",
        )
        return StaleOutcome.ERROR


def _redrive(
    order: OrderSnapshot, decision: domain.Redrive, deps: MonitorDependencies
) -> StaleOutcome:
    fields: dict[str, Any] = {
        "order_id": order.order_id, "step": order.status,
        "attempt": decision.attempt, "retries": decision.retries, "note": decision.note,
    }
    try:
        deps.publisher.publish_step(order.order_id, order.status, note=decision.note)
    except PublishFailed as exc:
        log_event(
            logger, "stale_redrive", logging.WARNING, outcome="publish_failed",
            error=str(exc), **fields,
        )
        return StaleOutcome.ERROR
    log_event(logger, "stale_redrive", outcome="published", **fields)
    return StaleOutcome.REDRIVEN


def _fail(
    order: OrderSnapshot, decision: domain.FailStale, deps: MonitorDependencies
) -> StaleOutcome:
    note = decision.note(order.status)
    fields: dict[str, Any] = {"order_id": order.order_id, "step": order.status, "note": note}
    try:
        result = deps.orders.advance_order(order.order_id, order.status, OrderStatus.FAILED, note, 0.0)
    except (IllegalTransition, OrderNotFound) as exc:
        # The step went ahead after all (or the order was canceled) since the claim.
        current = getattr(exc, "current", "")
        log_event(logger, "stale_fail", outcome="moved_on", current=current, **fields)
        return StaleOutcome.MOVED_ON
    if not result.applied:
        # Moved on, or failed by someone else meanwhile (who also released its stock).
        log_event(logger, "stale_fail", outcome="moved_on", current=result.order.status, **fields)
        return StaleOutcome.MOVED_ON
    # Only after the order is FAILED: releasing first could strand a step that still
    # advances the order, leaving a shipped order that holds no stock.
    released = deps.reservations.release_stock(order.order_id)
    log_event(
        logger, "stale_fail", outcome="failed",
        released=[{"product_id": i.product_id, "quantity": i.quantity} for i in released],
        **fields,
    )
    return StaleOutcome.FAILED
