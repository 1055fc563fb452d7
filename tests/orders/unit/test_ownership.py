"""Whose orders a caller sees and acts on, on fakes: a customer only its own (another's
reads exactly like a missing one), admins any, and request_ids scoped per customer."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from services.common.errors import PermissionDenied
from services.common.lifecycle.status import OrderStatus
from services.orders.domain.callers import Caller, CallerRole
from services.orders.domain.errors import OrderNotFound
from services.orders.domain.model import Order, OrderFilters
from services.orders.domain.order_requests import OrderRequest, RequestedItem
from services.orders.service_layer.cancellation import cancel_order
from services.orders.service_layer.intake import create_order, create_orders
from services.orders.service_layer.queries import get_order, list_orders, order_history
from services.orders.service_layer.transitions import AdvanceOrder, advance_order
from services.orders.service_layer.watching import watch_order
from tests.orders.unit.fakes import FakeSystem

pytestmark = pytest.mark.unit

ADA = Caller("ada", CallerRole.CUSTOMER)
BOB = Caller("bob", CallerRole.CUSTOMER)
ADMIN = Caller("root", CallerRole.ADMIN)
WORKER = Caller("worker", CallerRole.SERVICE)


@pytest.fixture
def system() -> FakeSystem:
    system = FakeSystem()
    system.catalog.prices = {1: Decimal("2.00")}
    return system


def order_for(
    system: FakeSystem, caller: Caller, request_id: str = "", customer_id: str = ""
) -> Order:
    request = OrderRequest("Ada", (RequestedItem(1, 1),), request_id, customer_id)
    return asyncio.run(create_order(request, caller, system.deps))


def not_found_message(call) -> str:
    with pytest.raises(OrderNotFound) as missing:
        asyncio.run(call)
    return missing.value.message


def test_an_order_belongs_to_the_customer_who_placed_it(system: FakeSystem) -> None:
    order = order_for(system, ADA)
    assert order.customer_id == "ada"
    assert asyncio.run(get_order(order.order_id, ADA, system.deps)) == order


def test_another_customers_order_is_answered_exactly_like_a_missing_one(system: FakeSystem) -> None:
    order = order_for(system, ADA)
    unknown = uuid.UUID(int=order.order_id.int ^ 1)

    for call in (
        lambda oid: get_order(oid, BOB, system.deps),
        lambda oid: order_history(oid, BOB, system.deps),
        lambda oid: cancel_order(oid, "mine now", BOB, system.deps),
    ):
        hidden = not_found_message(call(order.order_id))
        missing = not_found_message(call(unknown))
        assert hidden == missing.replace(str(unknown), str(order.order_id))

    async def first_of_watch() -> Order:
        return await anext(aiter(watch_order(order.order_id, BOB, system.deps)))

    not_found_message(first_of_watch())
    assert asyncio.run(get_order(order.order_id, ADA, system.deps)).status is OrderStatus.PENDING


def test_a_customer_lists_only_its_own_orders_and_may_not_name_another(system: FakeSystem) -> None:
    ada_orders = {order_for(system, ADA).order_id for _ in range(3)}
    order_for(system, BOB)

    page = asyncio.run(list_orders(OrderFilters(), 0, "", ADA, system.deps))

    assert {o.order_id for o in page.orders} == ada_orders
    with pytest.raises(PermissionDenied):
        asyncio.run(list_orders(OrderFilters(customer_id="bob"), 0, "", ADA, system.deps))
    own = asyncio.run(list_orders(OrderFilters(customer_id="ada"), 0, "", ADA, system.deps))
    assert {o.order_id for o in own.orders} == ada_orders


def test_an_admin_sees_every_order_filters_by_customer_and_orders_on_a_customers_behalf(
    system: FakeSystem,
) -> None:
    mine = order_for(system, ADA)
    for_bob = order_for(system, ADMIN, customer_id="bob")

    assert for_bob.customer_id == "bob"
    assert asyncio.run(get_order(mine.order_id, ADMIN, system.deps)) == mine
    everyone = asyncio.run(list_orders(OrderFilters(), 0, "", ADMIN, system.deps))
    assert {o.order_id for o in everyone.orders} == {mine.order_id, for_bob.order_id}
    bobs = asyncio.run(list_orders(OrderFilters(customer_id="bob"), 0, "", ADMIN, system.deps))
    assert [o.order_id for o in bobs.orders] == [for_bob.order_id]
    assert asyncio.run(get_order(for_bob.order_id, BOB, system.deps)) == for_bob


def test_a_customer_may_not_order_for_someone_else_alone_in_a_batch(system: FakeSystem) -> None:
    requests = [
        OrderRequest("Ada", (RequestedItem(1, 1),)),
        OrderRequest("Ada", (RequestedItem(1, 1),), customer_id="bob"),
        OrderRequest("Ada", (RequestedItem(1, 1),), customer_id="ada"),
    ]
    outcomes = asyncio.run(create_orders(requests, ADA, system.deps))

    assert isinstance(outcomes[0], Order) and outcomes[0].customer_id == "ada"
    assert isinstance(outcomes[1], PermissionDenied)
    assert isinstance(outcomes[2], Order) and outcomes[2].customer_id == "ada"


def test_request_ids_are_scoped_per_customer(system: FakeSystem) -> None:
    ada = order_for(system, ADA, request_id="checkout-1")
    bob = order_for(system, BOB, request_id="checkout-1")

    assert ada.order_id != bob.order_id and bob.customer_id == "bob"
    assert order_for(system, ADA, request_id="checkout-1") == ada
    assert order_for(system, BOB, request_id="checkout-1") == bob


def test_history_names_who_caused_each_transition(system: FakeSystem) -> None:
    order = order_for(system, ADA)
    command = AdvanceOrder(
        order.order_id, OrderStatus.PENDING, OrderStatus.PROCESSING, "", 5, (), WORKER.actor
    )
    asyncio.run(advance_order(command, system.deps))
    asyncio.run(cancel_order(order.order_id, "changed my mind", ADMIN, system.deps))

    entries = asyncio.run(order_history(order.order_id, ADA, system.deps))

    assert [(e.to_status, e.actor) for e in entries] == [
        (OrderStatus.PENDING, "customer:ada"),
        (OrderStatus.PROCESSING, "service:worker"),
        (OrderStatus.CANCELED, "admin:root"),
    ]
