"""Advancing, claiming, canceling and watching, on fakes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from services.common.lifecycle.status import OrderStatus as S
from services.orders.domain.errors import IllegalTransition, OrderNotCancelable, OrderNotFound
from services.orders.domain.model import Order
from services.orders.domain.order_requests import OrderRequest, RequestedItem
from services.orders.service_layer.cancellation import cancel_order
from services.orders.service_layer.intake import create_order
from services.orders.service_layer.stock_release import StockReleaseRetrier
from services.orders.service_layer.transitions import (
    AdvanceOrder,
    ClaimStaleOrders,
    advance_order,
    claim_stale_orders,
)
from services.orders.service_layer.watching import watch_order
from tests.orders.unit.fakes import CUSTOMER, FakeSystem

pytestmark = pytest.mark.unit


@pytest.fixture
def system() -> FakeSystem:
    system = FakeSystem()
    system.catalog.prices = {1: Decimal("2.00")}
    return system


def new_order(system: FakeSystem) -> Order:
    return asyncio.run(create_order(OrderRequest("Ada", (RequestedItem(1, 1),)), CUSTOMER, system.deps))


def advance(system: FakeSystem, order: Order, expected: S, to: S, note: str = "done"):
    command = AdvanceOrder(order.order_id, expected, to, note, next_step_due_in_s=5)
    return asyncio.run(advance_order(command, system.deps))


def statuses(system: FakeSystem, order: Order) -> list[tuple[S | None, S]]:
    return [(e.from_status, e.to_status) for e in system.db.history[order.order_id]]


def test_advance_records_history_and_sets_the_next_due_time(system):
    order = new_order(system)
    result = advance(system, order, S.PENDING, S.PROCESSING, note="picked up")
    assert result.applied
    assert result.order.status is S.PROCESSING
    assert result.order.status_note == "picked up"
    assert result.order.next_step_due_time == result.order.update_time + timedelta(seconds=5)
    assert statuses(system, order) == [(None, S.PENDING), (S.PENDING, S.PROCESSING)]
    assert system.db.notified == [order.order_id]


def test_a_repeated_advance_is_a_harmless_success_that_changes_nothing(system):
    order = new_order(system)
    advance(system, order, S.PENDING, S.PROCESSING)
    advance(system, order, S.PROCESSING, S.PACKAGING)
    repeat = advance(system, order, S.PENDING, S.PROCESSING)
    assert not repeat.applied
    assert repeat.order.status is S.PACKAGING
    assert len(system.db.history[order.order_id]) == 3


def test_a_terminal_state_clears_the_due_time(system):
    order = new_order(system)
    assert advance(system, order, S.PENDING, S.FAILED).order.next_step_due_time is None


def test_advancing_a_canceled_order_is_refused_naming_its_status(system):
    order = new_order(system)
    asyncio.run(cancel_order(order.order_id, "", CUSTOMER, system.deps))
    with pytest.raises(IllegalTransition, match="is CANCELED"):
        advance(system, order, S.PENDING, S.PROCESSING)


def test_a_step_that_is_not_in_the_lifecycle_is_refused(system):
    order = new_order(system)
    with pytest.raises(IllegalTransition, match="PENDING -> SHIPPED is not a step"):
        advance(system, order, S.PENDING, S.SHIPPED)


def test_advancing_an_unknown_order_is_not_found(system):
    with pytest.raises(OrderNotFound):
        command = AdvanceOrder(uuid.uuid4(), S.PENDING, S.PROCESSING, "", 0)
        asyncio.run(advance_order(command, system.deps))


def test_claiming_takes_only_overdue_orders_and_counts_claims(system):
    order = new_order(system)
    system.db.clock += timedelta(seconds=30)
    command = ClaimStaleOrders(limit=10, stale_after_s=60, lease_s=100)
    assert asyncio.run(claim_stale_orders(command, system.deps)) == []
    system.db.clock += timedelta(seconds=60)
    (claimed,) = asyncio.run(claim_stale_orders(command, system.deps))
    assert claimed.order.order_id == order.order_id
    assert claimed.stale_claims == 1
    assert asyncio.run(claim_stale_orders(command, system.deps)) == []


def test_cancel_records_the_reason_and_releases_stock(system):
    order = new_order(system)
    advance(system, order, S.PENDING, S.PROCESSING)
    canceled = asyncio.run(cancel_order(order.order_id, "changed my mind", CUSTOMER, system.deps))
    assert canceled.status is S.CANCELED
    assert canceled.status_note == "canceled by the customer: changed my mind"
    assert statuses(system, order)[-1] == (S.PROCESSING, S.CANCELED)
    assert system.releaser.released == [order.order_id]
    assert not system.db.rows[order.order_id].release_pending


def test_cancel_after_shipping_is_refused_naming_the_status(system):
    order = new_order(system)
    for expected, to in [(S.PENDING, S.PROCESSING), (S.PROCESSING, S.PACKAGING),
                         (S.PACKAGING, S.SHIPPED)]:
        advance(system, order, expected, to)
    with pytest.raises(OrderNotCancelable, match="order is SHIPPED; only PENDING"):
        asyncio.run(cancel_order(order.order_id, "", CUSTOMER, system.deps))


def test_a_failed_release_leaves_the_order_canceled_and_is_retried(system):
    order = new_order(system)
    system.releaser.available = False
    canceled = asyncio.run(cancel_order(order.order_id, "", CUSTOMER, system.deps))
    assert canceled.status is S.CANCELED
    assert system.db.rows[order.order_id].release_pending
    assert system.release_retries_requested == 1

    retrier = StockReleaseRetrier(system.uow, system.releaser)
    assert not asyncio.run(retrier.release_pending())
    system.releaser.available = True
    assert asyncio.run(retrier.release_pending())
    assert system.releaser.released == [order.order_id]
    assert not system.db.rows[order.order_id].release_pending


def test_watch_shows_every_transition_even_when_wake_ups_coalesce(system):
    order = new_order(system)

    async def scenario() -> list[S]:
        seen: list[S] = []
        watch = watch_order(order.order_id, CUSTOMER, system.deps)

        async def rest() -> list[S]:
            return [o.status async for o in watch]

        seen.append((await asyncio.wait_for(anext(watch), 10)).status)
        # Three transitions, one wake-up.
        for expected, to in [(S.PENDING, S.PROCESSING), (S.PROCESSING, S.PACKAGING)]:
            await advance_order(AdvanceOrder(order.order_id, expected, to, "", 1), system.deps)
        system.changes.changed(order.order_id)
        seen.append((await asyncio.wait_for(anext(watch), 10)).status)
        seen.append((await asyncio.wait_for(anext(watch), 10)).status)
        await cancel_order(order.order_id, "", CUSTOMER, system.deps)
        system.changes.changed(order.order_id)
        seen.extend(await asyncio.wait_for(rest(), 10))
        return seen

    assert asyncio.run(scenario()) == [S.PENDING, S.PROCESSING, S.PACKAGING, S.CANCELED]
    assert system.changes.signals[order.order_id] == []
