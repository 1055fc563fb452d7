"""Lifecycle transitions requested by the worker and the stale monitor."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from services.common.errors import DomainError
from services.common.lifecycle.status import OrderStatus, is_terminal
from services.common.logs import log_event
from services.orders.domain.errors import OrderNotFound
from services.orders.domain.lifecycle import judge_missed_advance, require_transition
from services.orders.domain.model import Order, StaleOrder
from services.orders.service_layer.dependencies import OrderServiceDeps
from services.orders.service_layer.ports import OrderRepository

logger = logging.getLogger("fulfillment.orders")


@dataclass(frozen=True)
class AdvanceOrder:
    order_id: uuid.UUID
    expected_status: OrderStatus
    to_status: OrderStatus
    note: str
    next_step_due_in_s: float
    # Transitions to apply right after this one, each its own compare-and-set and commit
    # (steps that take no time); the first that does not apply ends the run.
    then_statuses: tuple[OrderStatus, ...] = ()
    # Who asks (the worker's or the monitor's "service:<subject>"), for the history rows.
    actor: str = ""


@dataclass(frozen=True)
class AdvanceResult:
    order: Order
    # False when the transition had been applied before (a redelivered task).
    applied: bool
    # How many of the command's then_statuses applied after it.
    then_applied: int = 0


@dataclass(frozen=True)
class ClaimStaleOrders:
    limit: int
    stale_after_s: float
    lease_s: float


async def advance_order(command: AdvanceOrder, deps: OrderServiceDeps) -> AdvanceResult:
    """The transition, then each of `then_statuses` while they apply."""
    result = await _advance_once(command, deps)
    if not result.applied:
        return result
    then_applied = 0
    previous = command.to_status
    for to_status in command.then_statuses:
        step = AdvanceOrder(
            command.order_id, previous, to_status, "", command.next_step_due_in_s, (), command.actor
        )
        try:
            next_result = await _advance_once(step, deps)
        except DomainError:
            # Moved elsewhere meanwhile (canceled, failed): the caller gets it as it is.
            current = await deps.uow.autocommit(lambda repo: repo.get(command.order_id), name="get_order")
            return AdvanceResult(current or result.order, True, then_applied)
        if not next_result.applied:
            return AdvanceResult(next_result.order, True, then_applied)
        result, previous, then_applied = next_result, to_status, then_applied + 1
    return AdvanceResult(result.order, True, then_applied)


async def _advance_once(command: AdvanceOrder, deps: OrderServiceDeps) -> AdvanceResult:
    order_id = command.order_id
    require_transition(str(order_id), command.expected_status, command.to_status)
    due_in = None if is_terminal(command.to_status) else command.next_step_due_in_s

    # A FAILED order holds no stock (conservation), whoever failed it. Marking its release
    # pending in the same transaction means the release happens even if the caller (the
    # stale monitor, say) dies before it calls ReleaseStock itself.
    releases_stock = command.to_status is OrderStatus.FAILED

    async def compare_and_set(repo: OrderRepository) -> AdvanceResult:
        change = await repo.change_status(
            order_id, [command.expected_status], command.to_status, command.note, due_in,
            command.actor, release_stock=releases_stock,
        )
        if change is not None:
            return AdvanceResult(change.order, applied=True)
        unchanged = await repo.get(order_id)
        if unchanged is None:
            raise OrderNotFound(str(order_id))
        judge_missed_advance(
            str(order_id), unchanged.status, command.expected_status, command.to_status
        )
        return AdvanceResult(unchanged, applied=False)

    # From one status, the compare-and-set with its history row is one statement.
    result = await deps.uow.autocommit(compare_and_set, name="advance_order")
    if result.applied:
        deps.metrics.order_transitioned(command.expected_status, command.to_status)
        log_event(
            logger, "order_status_changed", order_id=str(order_id),
            from_status=command.expected_status.value, to_status=command.to_status.value,
            note=command.note, actor=command.actor,
        )
        if releases_stock:
            deps.retry_stock_releases()
    else:
        log_event(
            logger, "order_advance_repeated", order_id=str(order_id),
            status=result.order.status.value, to_status=command.to_status.value,
        )
    return result


async def claim_stale_orders(command: ClaimStaleOrders, deps: OrderServiceDeps) -> list[StaleOrder]:
    claimed = await deps.uow.transaction(
        lambda repo: repo.claim_stale(command.limit, command.stale_after_s, command.lease_s),
        name="claim_stale_orders",
    )
    for stale in claimed:
        log_event(
            logger, "order_claimed_as_stale", order_id=str(stale.order.order_id),
            status=stale.order.status.value, stale_claims=stale.stale_claims,
        )
    return claimed
