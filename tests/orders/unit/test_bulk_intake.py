"""BulkCreateOrders on fakes: one result per request, in order, batched, capped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal

import pytest

from services.orders.domain.errors import BulkLimitExceeded
from services.orders.domain.model import Order
from services.orders.domain.order_requests import OrderRequest, RequestedItem
from services.orders.service_layer.bulk_intake import BulkResult, bulk_create_orders
from tests.orders.unit.fakes import CUSTOMER, FakeSystem

pytestmark = pytest.mark.unit


async def stream(requests: Iterable[OrderRequest]) -> AsyncIterator[OrderRequest]:
    for request in requests:
        yield request


def run_bulk(system: FakeSystem, requests: list[OrderRequest]) -> list[BulkResult]:
    async def collect() -> list[BulkResult]:
        return [r async for r in bulk_create_orders(stream(requests), CUSTOMER, system.deps)]

    return asyncio.run(collect())


def numbered_requests(count: int) -> list[OrderRequest]:
    return [
        OrderRequest(f"customer {i}", (RequestedItem(1, 1),), request_id=f"req-{i}")
        for i in range(count)
    ]


def test_results_come_one_per_request_in_order_across_batches():
    system = FakeSystem(bulk_batch_size=3)
    system.catalog.prices = {1: Decimal("1.00")}
    requests = numbered_requests(10)
    results = run_bulk(system, requests)
    assert [r.index for r in results] == list(range(10))
    assert [r.request_id for r in results] == [f"req-{i}" for i in range(10)]
    assert [r.outcome.customer_name for r in results] == [f"customer {i}" for i in range(10)]
    assert 4 <= len(system.catalog.lookups) <= 10


def test_requests_past_the_cap_are_refused_and_not_processed():
    system = FakeSystem(bulk_max_items=4, bulk_batch_size=3)
    system.catalog.prices = {1: Decimal("1.00")}
    results = run_bulk(system, numbered_requests(7))
    assert all(isinstance(r.outcome, Order) for r in results[:4])
    assert all(isinstance(r.outcome, BulkLimitExceeded) for r in results[4:])
    assert [r.index for r in results] == list(range(7))
    assert len(system.db.rows) == 4


def test_a_duplicate_request_id_later_in_the_stream_gets_the_first_order():
    system = FakeSystem(bulk_batch_size=2)
    system.catalog.prices = {1: Decimal("1.00")}
    requests = numbered_requests(3) + [numbered_requests(1)[0]]
    results = run_bulk(system, requests)
    assert results[3].outcome == results[0].outcome
    assert len(system.db.rows) == 3


def test_an_empty_stream_gives_no_results():
    assert run_bulk(FakeSystem(), []) == []
