"""SummarizeOrders on fakes: every status counted (zeros included), admins only."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from services.common.errors import PermissionDenied
from services.common.lifecycle.status import OrderStatus as S
from services.orders.domain.callers import Caller, CallerRole
from services.orders.domain.order_requests import OrderRequest, RequestedItem
from services.orders.service_layer.cancellation import cancel_order
from services.orders.service_layer.intake import create_order
from services.orders.service_layer.queries import summarize_orders
from services.orders.service_layer.transitions import AdvanceOrder, advance_order
from tests.orders.unit.fakes import CUSTOMER, FakeSystem

pytestmark = pytest.mark.unit

ADMIN = Caller("root", CallerRole.ADMIN)


@pytest.fixture
def system() -> FakeSystem:
    system = FakeSystem()
    system.catalog.prices = {1: Decimal("2.00")}
    return system


def place_orders(system: FakeSystem, how_many: int) -> list:
    request = OrderRequest("Ada", (RequestedItem(1, 1),))
    return [asyncio.run(create_order(request, CUSTOMER, system.deps)) for _ in range(how_many)]


def test_an_empty_store_counts_zero_for_every_status(system: FakeSystem) -> None:
    assert asyncio.run(summarize_orders(ADMIN, system.deps)) == dict.fromkeys(S, 0)


def test_counts_follow_creates_transitions_and_cancels(system: FakeSystem) -> None:
    orders = place_orders(system, 5)
    for order in orders[:2]:
        command = AdvanceOrder(order.order_id, S.PENDING, S.PROCESSING, "picked", 5)
        asyncio.run(advance_order(command, system.deps))
    asyncio.run(cancel_order(orders[4].order_id, "changed my mind", CUSTOMER, system.deps))

    counts = asyncio.run(summarize_orders(ADMIN, system.deps))

    assert counts == {**dict.fromkeys(S, 0), S.PENDING: 2, S.PROCESSING: 2, S.CANCELED: 1}
    assert list(counts) == list(S), "every status, in the lifecycle's order"


@pytest.mark.parametrize("role", [CallerRole.CUSTOMER, CallerRole.SERVICE])
def test_only_an_admin_may_summarize(system: FakeSystem, role: CallerRole) -> None:
    place_orders(system, 1)
    with pytest.raises(PermissionDenied, match="only an admin may summarize orders"):
        asyncio.run(summarize_orders(Caller("someone", role), system.deps))
