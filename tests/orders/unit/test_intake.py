"""Taking orders, on fakes: pricing, idempotency, exact per-request outcomes."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from services.common.errors import InvalidArgument
from services.common.lifecycle.status import OrderStatus
from services.orders.domain.errors import InventoryUnavailable, RequestIdReused, UnknownProducts
from services.orders.domain.model import Order
from services.orders.domain.order_requests import OrderRequest, RequestedItem
from services.orders.service_layer.intake import create_order, create_orders
from tests.orders.unit.fakes import CUSTOMER, FakeSystem

pytestmark = pytest.mark.unit


def request(name: str = "Ada", items=((1, 2),), request_id: str = "") -> OrderRequest:
    return OrderRequest(name, tuple(RequestedItem(p, q) for p, q in items), request_id)


@pytest.fixture
def system() -> FakeSystem:
    system = FakeSystem()
    system.catalog.prices = {1: Decimal("12.50"), 2: Decimal("3.00"), 3: Decimal("7.25")}
    return system


def test_new_order_is_pending_with_price_snapshot_history_and_one_task(system):
    order = asyncio.run(create_order(request(items=((2, 1), (1, 3))), CUSTOMER, system.deps))
    assert order.status is OrderStatus.PENDING
    assert [(line.product_id, line.quantity, line.unit_price) for line in order.items] == [
        (2, 1, Decimal("3.00")), (1, 3, Decimal("12.50")),
    ]
    assert [e.to_status for e in system.db.history[order.order_id]] == [OrderStatus.PENDING]
    assert system.db.history[order.order_id][0].from_status is None
    assert system.publisher.published == [order.order_id]


def test_retry_with_the_same_request_id_returns_the_original_and_sends_no_task(system):
    first = asyncio.run(create_order(request(request_id="r-1"), CUSTOMER, system.deps))
    again = asyncio.run(create_order(request(request_id="r-1"), CUSTOMER, system.deps))
    assert again == first
    assert len(system.db.rows) == 1
    assert system.publisher.published == [first.order_id]


def test_same_request_id_with_items_in_another_order_is_the_same_request(system):
    first = asyncio.run(create_order(request(items=((1, 1), (2, 2)), request_id="r"), CUSTOMER, system.deps))
    again = asyncio.run(create_order(request(items=((2, 2), (1, 1)), request_id="r"), CUSTOMER, system.deps))
    assert again.order_id == first.order_id


def test_same_request_id_with_another_body_is_rejected(system):
    asyncio.run(create_order(request(request_id="r-1"), CUSTOMER, system.deps))
    with pytest.raises(RequestIdReused, match="already used for a different order"):
        asyncio.run(create_order(request(items=((1, 5),), request_id="r-1"), CUSTOMER, system.deps))
    assert len(system.db.rows) == 1


def test_a_retry_is_answered_even_while_the_inventory_is_down(system):
    first = asyncio.run(create_order(request(request_id="r-1"), CUSTOMER, system.deps))
    system.catalog.available = False
    assert asyncio.run(create_order(request(request_id="r-1"), CUSTOMER, system.deps)) == first


def test_inventory_down_writes_nothing(system):
    system.catalog.available = False
    with pytest.raises(InventoryUnavailable, match="inventory service unavailable"):
        asyncio.run(create_order(request(), CUSTOMER, system.deps))
    assert system.db.rows == {}
    assert system.publisher.published == []


def test_unknown_product_is_named_with_its_field(system):
    with pytest.raises(UnknownProducts) as unknown:
        asyncio.run(create_order(request(items=((1, 1), (99, 1))), CUSTOMER, system.deps))
    assert unknown.value.product_ids == [99]
    assert "99 (items[1].product_id)" in unknown.value.message
    assert system.db.rows == {}


def test_invalid_request_is_rejected_before_asking_the_inventory(system):
    with pytest.raises(InvalidArgument):
        asyncio.run(create_order(request(name=""), CUSTOMER, system.deps))
    assert system.catalog.lookups == []


def test_a_batch_asks_the_inventory_once_and_fails_only_orders_with_unknown_products(system):
    outcomes = asyncio.run(
        create_orders(
            [request(items=((1, 1),)), request(items=((2, 1), (98, 1))), request(items=((3, 1),)),
             request(items=((99, 1),)), request(items=((1, 2), (2, 2)))],
            CUSTOMER, system.deps,
        )
    )
    assert len(system.catalog.lookups) == 1
    assert system.catalog.lookups[0] == {1, 2, 3, 98, 99}
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == ["Order", "UnknownProducts", "Order", "UnknownProducts", "Order"]
    assert len(system.db.rows) == 3
    assert len(system.publisher.published) == 3


def test_duplicate_request_ids_in_one_batch_follow_the_first_order_stored(system):
    outcomes = asyncio.run(
        create_orders(
            [
                request(name="", request_id="dup"),              # invalid: claims nothing
                request(items=((99, 1),), request_id="dup"),     # unknown product: claims nothing
                request(items=((1, 1),), request_id="dup"),      # stored: owns "dup"
                request(items=((1, 1),), request_id="dup"),      # same body: the same order
                request(items=((1, 2),), request_id="dup"),      # other body: rejected
            ],
            CUSTOMER, system.deps,
        )
    )
    assert isinstance(outcomes[0], InvalidArgument)
    assert isinstance(outcomes[1], UnknownProducts)
    assert isinstance(outcomes[2], Order)
    assert outcomes[3] == outcomes[2]
    assert isinstance(outcomes[4], RequestIdReused)
    assert len(system.db.rows) == 1
    assert system.publisher.published == [outcomes[2].order_id]


def test_a_batch_mixing_new_repeated_and_invalid_requests_answers_each_exactly(system):
    earlier = asyncio.run(create_order(request(items=((2, 1),), request_id="old"), CUSTOMER, system.deps))
    outcomes = asyncio.run(
        create_orders(
            [
                request(items=((1, 1),), request_id="new"),     # stored: owns "new"
                request(items=((2, 1),), request_id="old"),     # retry of an earlier order
                request(name="", request_id="bad"),             # invalid
                request(items=((1, 1),), request_id="new"),     # repeat inside the batch
                request(items=((3, 1),), request_id="old"),     # earlier key, other body
                request(items=((1, 5),), request_id="new"),     # batch's key, other body
                request(items=((3, 2),)),                       # no request_id: always new
            ],
            CUSTOMER, system.deps,
        )
    )
    assert isinstance(outcomes[0], Order)
    assert outcomes[1] == earlier
    assert isinstance(outcomes[2], InvalidArgument)
    assert outcomes[3] == outcomes[0]
    assert isinstance(outcomes[4], RequestIdReused)
    assert isinstance(outcomes[5], RequestIdReused)
    assert isinstance(outcomes[6], Order) and outcomes[6].order_id != outcomes[0].order_id
    assert len(system.db.rows) == 3
    assert system.publisher.published == [
        earlier.order_id, outcomes[0].order_id, outcomes[6].order_id
    ]


def test_inventory_down_fails_each_order_of_a_batch_but_still_answers_retries(system):
    stored = asyncio.run(create_order(request(request_id="kept"), CUSTOMER, system.deps))
    system.catalog.available = False
    outcomes = asyncio.run(
        create_orders(
            [request(request_id="kept"), request(items=((2, 1),)), request(name="")],
            CUSTOMER, system.deps,
        )
    )
    assert outcomes[0] == stored
    assert isinstance(outcomes[1], InventoryUnavailable)
    assert isinstance(outcomes[2], InvalidArgument)
    assert len(system.db.rows) == 1
