"""GetOrder, ListOrders and ListOrderHistory against a real database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.common.pagination import every_page
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.orders.integration.clients import Status, order_request, unique_name

pytestmark = pytest.mark.integration


def walk(clients, request: orders_pb2.ListOrdersRequest) -> list[str]:
    pages = every_page(clients.orders.ListOrders, request, timeout=30)
    return [o.order_id for page in pages for o in page.orders]


def test_paging_walks_every_order_once_while_orders_are_being_created(clients):
    product = clients.create_product()
    customer = unique_name("paging")
    existing = {
        r.order.order_id
        for r in clients.orders.BulkCreateOrders(
            iter([order_request(customer, [(product, 1)]) for _ in range(120)]), timeout=60
        )
    }
    stop = threading.Event()

    def keep_creating() -> int:
        created = 0
        while not stop.is_set() and created < 200:
            clients.create_order(customer, [(product, 1)])
            created += 1
        return created

    with ThreadPoolExecutor(3) as pool:
        creators = [pool.submit(keep_creating) for _ in range(3)]
        try:
            seen = walk(
                clients, orders_pb2.ListOrdersRequest(customer_name=customer, page_size=7)
            )
        finally:
            stop.set()
        created_meanwhile = sum(c.result() for c in creators)

    assert created_meanwhile > 0
    assert len(seen) == len(set(seen)), "an order was listed twice"
    assert existing <= set(seen), "an order that existed before paging began was skipped"
    assert len(walk(clients, orders_pb2.ListOrdersRequest(customer_name=customer))) == (
        120 + created_meanwhile
    )


def test_list_is_newest_first_and_filters_by_status_and_customer(clients):
    product = clients.create_product()
    customer = unique_name("filters")
    orders = [clients.create_order(customer, [(product, 1)]) for _ in range(4)]
    clients.advance(orders[1].order_id, Status.PENDING, Status.PROCESSING)
    clients.advance(orders[3].order_id, Status.PENDING, Status.PROCESSING)
    clients.create_order(unique_name("someone-else"), [(product, 1)])

    everything = walk(clients, orders_pb2.ListOrdersRequest(customer_name=customer, page_size=3))
    assert everything == [o.order_id for o in reversed(orders)]
    processing = walk(
        clients,
        orders_pb2.ListOrdersRequest(customer_name=customer, status=Status.PROCESSING),
    )
    assert processing == [orders[3].order_id, orders[1].order_id]


def test_history_is_oldest_first_and_chains_statuses(clients):
    order = clients.create_order(unique_name(), [(clients.create_product(), 1)])
    clients.advance(order.order_id, Status.PENDING, Status.PROCESSING, note="picking")
    clients.advance(order.order_id, Status.PROCESSING, Status.PACKAGING, note="boxed")
    entries = clients.history(order.order_id)
    assert [(e.from_status, e.to_status, e.note) for e in entries] == [
        (Status.STATUS_UNSPECIFIED, Status.PENDING, "order received"),
        (Status.PENDING, Status.PROCESSING, "picking"),
        (Status.PROCESSING, Status.PACKAGING, "boxed"),
    ]
    times = [e.time.ToDatetime() for e in entries]
    assert times == sorted(times)
