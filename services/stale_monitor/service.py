"""sweep_stale_orders: claim overdue orders and re-drive their step or fail them.

Concurrent monitors are safe because ClaimStaleOrders locks with FOR UPDATE SKIP LOCKED
and pushes each claimed order's due time forward by the lease in the same transaction:
an order is handed to exactly one sweep, and is not due again before lease + stale_after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.common.config import Settings
from services.common.logs import log_event
from services.lifecycle_worker import domain
from services.lifecycle_worker.ports import (
    IllegalTransition,
    OrderNotFound,
    OrdersGateway,
    PublishFailed,
    ReservationsGateway,
    StaleOrder,
    StepPublisher,
)

logger = logging.getLogger("fulfillment.monitor")

BATCH_LIMIT = 100
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
            lease_s=domain.step_due_in(settings.step_delay_max_s),
            retries=settings.stale_retries,
        )


@dataclass
class SweepReport:
    claimed: int = 0
    redriven: int = 0
    failed: int = 0
    moved_on: int = 0
    errors: int = 0


@dataclass(frozen=True)
class MonitorDependencies:
    orders: OrdersGateway
    reservations: ReservationsGateway
    publisher: StepPublisher


def sweep_stale_orders(
    deps: MonitorDependencies,
    policy: SweepPolicy,
    should_stop: Callable[[], bool] = lambda: False,
) -> SweepReport:
    """Claim batches until one comes back short; every claimed order is handled."""
    report = SweepReport()
    for _ in range(policy.max_batches):
        batch = deps.orders.claim_stale_orders(
            policy.batch_limit, policy.stale_after_s, policy.lease_s
        )
        report.claimed += len(batch)
        for stale in batch:
            handle_stale_order(stale, deps, policy, report)
        if len(batch) < policy.batch_limit or should_stop():
            break
    if report.claimed:
        log_event(logger, "sweep", **vars(report))
    return report


def handle_stale_order(
    stale: StaleOrder, deps: MonitorDependencies, policy: SweepPolicy, report: SweepReport
) -> None:
    order = stale.order
    decision = domain.decide_stale(stale.stale_claims, policy.retries)
    try:
        if isinstance(decision, domain.Redrive):
            _redrive(order, decision, deps, report)
        else:
            _fail(order, decision, deps, report)
    except Exception as exc:  # one order's trouble must not end the sweep for the others
        report.errors += 1
        log_event(
            logger, "stale_error", logging.WARNING,
            order_id=order.order_id, status=order.status, error=f"{type(exc).__name__}: {exc}",
        )


def _redrive(
    order: domain.OrderSnapshot,
    decision: domain.Redrive,
    deps: MonitorDependencies,
    report: SweepReport,
) -> None:
    fields: dict[str, Any] = {
        "order_id": order.order_id, "step": order.status,
        "attempt": decision.attempt, "retries": decision.retries, "note": decision.note,
    }
    try:
        deps.publisher.publish_step(order.order_id, order.status, note=decision.note)
    except PublishFailed as exc:
        report.errors += 1
        log_event(
            logger, "stale_redrive", logging.WARNING, outcome="publish_failed",
            error=str(exc), **fields,
        )
        return
    report.redriven += 1
    log_event(logger, "stale_redrive", outcome="published", **fields)


def _fail(
    order: domain.OrderSnapshot,
    decision: domain.FailStale,
    deps: MonitorDependencies,
    report: SweepReport,
) -> None:
    note = decision.note(order.status)
    fields: dict[str, Any] = {"order_id": order.order_id, "step": order.status, "note": note}
    try:
        result = deps.orders.advance_order(order.order_id, order.status, domain.FAILED, note, 0.0)
    except (IllegalTransition, OrderNotFound) as exc:
        # The step went ahead after all (or the order was canceled) since the claim.
        report.moved_on += 1
        current = getattr(exc, "current", "")
        log_event(logger, "stale_fail", outcome="moved_on", current=current, **fields)
        return
    if result.order.status != domain.FAILED:
        report.moved_on += 1
        log_event(logger, "stale_fail", outcome="moved_on", current=result.order.status, **fields)
        return
    # Only after the order is FAILED: releasing first could strand a step that still
    # advances the order, leaving a shipped order that holds no stock.
    released = deps.reservations.release_stock(order.order_id)
    report.failed += 1
    log_event(
        logger, "stale_fail", outcome="failed", applied=result.applied,
        released=[{"product_id": i.product_id, "quantity": i.quantity} for i in released],
        **fields,
    )
