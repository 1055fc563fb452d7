"""Canceling an order and giving its reserved stock back.

The cancel is a compare-and-set that also marks the order's stock release as pending, in
the same transaction. The release itself (an idempotent ReleaseStock call, whose tombstone
also stops a reservation that races the cancel) happens after the commit; if it fails, the
order stays canceled and the pending mark makes StockReleaseRetrier try again, also after a
restart of this service.
"""

from __future__ import annotations

import logging
import uuid

from services.common.lifecycle.status import CANCELABLE, OrderStatus
from services.common.logs import log_event
from services.orders.domain.callers import Caller
from services.orders.domain.errors import InventoryUnavailable, OrderNotFound
from services.orders.domain.lifecycle import require_cancelable
from services.orders.domain.model import Order, StatusChange
from services.orders.service_layer.completion import run_to_completion
from services.orders.service_layer.dependencies import OrderServiceDeps
from services.orders.service_layer.ports import OrderRepository, StockReleaser, UnitOfWork

logger = logging.getLogger("fulfillment.orders")

CANCEL_NOTE = "canceled by the customer"


async def cancel_order(
    order_id: uuid.UUID, reason: str, caller: Caller, deps: OrderServiceDeps
) -> Order:
    return await run_to_completion(_cancel_and_release(order_id, reason, caller, deps))


async def _cancel_and_release(
    order_id: uuid.UUID, reason: str, caller: Caller, deps: OrderServiceDeps
) -> Order:
    note = f"{CANCEL_NOTE}: {reason}" if reason else CANCEL_NOTE

    async def compare_and_set(repo: OrderRepository) -> StatusChange:
        change = await repo.change_status(
            order_id, CANCELABLE, OrderStatus.CANCELED, note, None, caller.actor,
            release_stock=True, visible_to=caller.visible_to,
        )
        if change is not None:
            return change
        current = await repo.current_status(order_id, visible_to=caller.visible_to)
        if current is None:
            raise OrderNotFound(str(order_id))
        require_cancelable(str(order_id), current)
        raise AssertionError(f"order {order_id} is {current} yet was not canceled")

    change = await deps.uow.transaction(compare_and_set, name="cancel_order")
    deps.metrics.order_transitioned(change.from_status, OrderStatus.CANCELED)
    log_event(
        logger, "order_status_changed", order_id=str(order_id), from_status=change.from_status,
        to_status=OrderStatus.CANCELED, note=note, actor=caller.actor,
    )
    if not await release_stock_of_ended(order_id, deps.uow, deps.releaser):
        deps.retry_stock_releases()
    return change.order


async def release_stock_of_ended(
    order_id: uuid.UUID, uow: UnitOfWork, releaser: StockReleaser
) -> bool:
    """True when the inventory confirmed the release; False leaves it pending for a retry."""
    try:
        await releaser.release_stock(order_id)
    except InventoryUnavailable as exc:
        log_event(
            logger, "stock_release_deferred", logging.WARNING,
            order_id=str(order_id), reason=exc.message,
        )
        return False
    try:
        await uow.transaction(
            lambda repo: repo.mark_stock_released(order_id), name="mark_stock_released"
        )
    except Exception:
        # The stock is back; only the mark is missing, and releasing again is a no-op.
        logger.exception("could not record the stock release of order %s", order_id)
        return False
    log_event(logger, "stock_released", order_id=str(order_id))
    return True
