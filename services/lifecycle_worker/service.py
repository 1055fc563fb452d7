"""advance_order: run one lifecycle step of one order. Every lifecycle rule lives here.

A step is safe to run any number of times: it moves the order with one compare-and-set
from the status the step was scheduled for, so a step that comes too late or twice
changes nothing. The reserving step first reads the order (GetOrder) for its items,
unless the step before it ran in the same task and its compare-and-set returned them;
reservations are keyed by order id, so a repeated reservation holds nothing more.

A next step whose delay draws 0 runs at once in the same task instead of going through
the broker: still one compare-and-set per step, and only the task whose compare-and-set
applied goes on, exactly as only it would have published.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from services.common.lifecycle.ports import (
    AdvanceResult,
    IllegalTransition,
    OrderNotFound,
    PublishFailed,
    ReservationRefused,
    ReservationRejected,
    StockShortfall,
)
from services.common.lifecycle.status import (
    ENDED_EARLY,
    NORMAL_PATH,
    OrderStatus,
    is_terminal,
    next_on_normal_path,
)
from services.common.lifecycle.timing import step_due_in
from services.common.logs import log_event
from services.common.tracing import span
from services.lifecycle_worker import domain
from services.lifecycle_worker.commands import (
    RunStep,
    StepDependencies,
    StepOutcome,
    StepResult,
)

logger = logging.getLogger("fulfillment.lifecycle.step")


def advance_order(command: RunStep, deps: StepDependencies) -> StepResult:
    """Run the step for `command.expected_status`, then each next step due at once.

    Every step logs one line with its outcome and duration; the last step's result is
    returned. A redelivered task that finds the order already past its step, and not
    ended, carries on from where the order is when steps take no time, because the
    inline steps it had been running died with its worker.
    """
    result = _run_logged_step(command, deps)
    # Each pass moves the order one status further along the normal path, so the path's
    # length bounds the loop.
    for _ in NORMAL_PATH:
        if result.status is None:
            break
        if result.run_next_inline:
            command = RunStep(command.order_id, result.status, known_order=result.order)
        elif _resumes_lost_steps(command, result, deps):
            command = RunStep(command.order_id, result.status, redelivered=True)
        else:
            break
        result = _run_logged_step(command, deps)
    return result


def _resumes_lost_steps(command: RunStep, result: StepResult, deps: StepDependencies) -> bool:
    return (
        command.redelivered
        and deps.timing.immediate
        and result.outcome is StepOutcome.ALREADY_DONE
        and result.status is not None
        and next_on_normal_path(result.status) is not None
    )


def _run_logged_step(command: RunStep, deps: StepDependencies) -> StepResult:
    started = time.monotonic()
    with span(
        f"step {command.expected_status.value}",
        order_id=command.order_id, step=command.expected_status.value,
    ) as step_span:
        try:
            result = _run_step(command, deps)
        except Exception as exc:
            error = {"error": f"{type(exc).__name__}: {exc}"}
            _log_step(command, started, StepOutcome.ERROR, logging.WARNING, error)
            raise
        finally:
            deps.metrics.step_finished(command.expected_status, time.monotonic() - started)
        step_span.set_attribute("outcome", result.outcome.value)
        details: dict[str, Any] = {"status": result.status}
        if result.note:
            details["note"] = result.note
        if result.next_delay_s:
            details["next_delay_s"] = round(result.next_delay_s, 3)
        _log_step(command, started, result.outcome, logging.INFO, details)
    return result


def _log_step(
    command: RunStep,
    started: float,
    outcome: StepOutcome,
    level: int = logging.INFO,
    details: dict[str, Any] | None = None,
) -> None:
    fields: dict[str, Any] = {
        "order_id": command.order_id,
        "step": command.expected_status,
        "outcome": outcome,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    if command.note:
        fields["redrive"] = command.note
    log_event(logger, "step", level, **fields, **(details or {}))


def _run_step(command: RunStep, deps: StepDependencies) -> StepResult:
    expected = command.expected_status
    to_status = next_on_normal_path(expected)
    if to_status is None:
        return StepResult(StepOutcome.STOPPED, expected)
    try:
        if expected is domain.RESERVING_STEP:
            stopped = _reserve(command, deps)
            if stopped is not None:
                return stopped
        # The other steps need nothing from the order: the compare-and-set alone tells
        # whether it is still where this step expects it.
        return _advance(command, deps, to_status)
    except OrderNotFound:
        return StepResult(StepOutcome.NOT_FOUND, None)


def _reserve(command: RunStep, deps: StepDependencies) -> StepResult | None:
    """Hold the order's stock; a result means the step ends here."""
    order = command.known_order
    if order is None or not order.items:
        order = deps.orders.get_order(command.order_id)
    if order.status != command.expected_status:
        return _skip(order.status, command.expected_status)
    try:
        deps.reservations.reserve_stock(order.order_id, order.items)
    except StockShortfall as short:
        note = domain.shortfall_note(short.shortfalls)
        return _fail(command, deps, note, StepOutcome.FAILED_NO_STOCK)
    except ReservationRejected as rejected:
        note = f"cannot reserve stock: {rejected}"
        return _fail(command, deps, note, StepOutcome.FAILED_UNRESERVABLE)
    except ReservationRefused:
        # Only a cancel or a stale failure releases an order's reservation, and both
        # move the order to a terminal state that its next reader will see.
        return StepResult(StepOutcome.RESERVATION_REFUSED, order.status)
    return None


def _skip(current: OrderStatus, expected: OrderStatus) -> StepResult:
    if is_terminal(current):
        return StepResult(StepOutcome.STOPPED, current)
    if domain.is_past(current, expected):
        return StepResult(StepOutcome.ALREADY_DONE, current)
    return StepResult(StepOutcome.OUT_OF_ORDER, current)


def _with_redrive(note: str, command: RunStep) -> str:
    if not command.note:
        return note
    return f"{note} ({command.note})" if note else command.note


def _advance(command: RunStep, deps: StepDependencies, to_status: OrderStatus) -> StepResult:
    delay = deps.timing.next_delay()
    # When no step takes time, the steps after this one that need nothing but their
    # compare-and-set go in the same call (each still its own compare-and-set and commit).
    then = domain.steps_without_reserving(to_status) if deps.timing.immediate else ()
    try:
        advanced = deps.orders.advance_order(
            command.order_id, command.expected_status, to_status,
            command.note, step_due_in(delay), then,
        )
    except IllegalTransition as moved:
        return _stop_after_lost_race(command, deps, moved.current)
    if not advanced.applied and advanced.order.status in ENDED_EARLY:
        return _stop_after_lost_race(command, deps, advanced.order.status)
    if not advanced.applied:
        # A duplicate of this step got there first and scheduled the next step itself.
        return StepResult(StepOutcome.ALREADY_DONE, advanced.order.status)
    if then:
        return _after_run_of_steps(to_status, then, advanced)
    if is_terminal(to_status):
        return StepResult(StepOutcome.ADVANCED, to_status)
    if delay <= 0:
        return StepResult(
            StepOutcome.ADVANCED, to_status, run_next_inline=True, order=advanced.order
        )
    try:
        deps.publisher.publish_step(command.order_id, to_status, delay)
    except PublishFailed as exc:
        # The transition is committed with a due time; the stale monitor re-drives it.
        return StepResult(StepOutcome.ADVANCED_UNSCHEDULED, to_status, note=str(exc))
    return StepResult(StepOutcome.ADVANCED, to_status, next_delay_s=delay)


def _after_run_of_steps(
    to_status: OrderStatus, then: tuple[OrderStatus, ...], advanced: AdvanceResult
) -> StepResult:
    applied = then[: advanced.then_applied]
    reached = applied[-1] if applied else to_status
    note = f"then {', '.join(applied)}" if applied else ""
    if len(applied) < len(then):
        # The run stopped: the order was canceled, failed or moved on meanwhile.
        skipped = _skip(advanced.order.status, reached)
        return StepResult(skipped.outcome, skipped.status, note=note)
    if is_terminal(reached):
        return StepResult(StepOutcome.ADVANCED, reached, note=note)
    return StepResult(
        StepOutcome.ADVANCED, reached, note=note, run_next_inline=True, order=advanced.order
    )


def _stop_after_lost_race(
    command: RunStep, deps: StepDependencies, current: OrderStatus
) -> StepResult:
    if command.expected_status is domain.RESERVING_STEP and current in ENDED_EARLY:
        # We may have just reserved for an order canceled (or failed) meanwhile. Release
        # is idempotent, and whoever ended the order may have released before we reserved.
        deps.reservations.release_stock(command.order_id)
        return StepResult(StepOutcome.RELEASED, current)
    return _skip(current, command.expected_status)


def _fail(
    command: RunStep, deps: StepDependencies, note: str, outcome: StepOutcome
) -> StepResult:
    note = _with_redrive(note, command)
    try:
        failed = deps.orders.advance_order(
            command.order_id, command.expected_status, OrderStatus.FAILED, note, 0.0
        )
    except IllegalTransition as moved:
        return _skip(moved.current, command.expected_status)
    if not failed.applied:
        return StepResult(StepOutcome.ALREADY_DONE, failed.order.status)
    return StepResult(outcome, OrderStatus.FAILED, note=note)
