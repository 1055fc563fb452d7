"""Two customers ordering at the same time never see each other's orders: every list
either makes while both create holds its own orders only."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.pagination import every_page
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2_grpc as orders_grpc
from tests.auth import authorized_channel
from tests.orders.integration.clients import Clients, order_request

pytestmark = pytest.mark.integration

ORDERS_EACH = 40


def test_two_customers_creating_at_once_each_list_only_their_own_orders(
    orders_server, clients: Clients, settings: Settings
) -> None:
    product = clients.create_product()
    run = uuid.uuid4().hex[:8]
    customers = {f"alice-{run}": [], f"bob-{run}": []}
    stubs = {
        name: orders_grpc.OrderServiceStub(
            authorized_channel(orders_server.addr, settings, Role.CUSTOMER, name)
        )
        for name in customers
    }
    done = threading.Event()
    intrusions: list[tuple[str, str]] = []

    def create(name: str) -> None:
        for _ in range(ORDERS_EACH):
            order = stubs[name].CreateOrder(order_request("Shopper", [(product, 1)]), timeout=30)
            customers[name].append(order.order_id)

    def watch_lists(name: str) -> int:
        """Lists until the creating is over; returns how many ended while it went on."""
        during = 0
        while not done.is_set():
            request = orders_pb2.ListOrdersRequest(page_size=25)
            for page in every_page(stubs[name].ListOrders, request, timeout=30):
                intrusions.extend((name, o.customer_id) for o in page.orders if o.customer_id != name)
            during += not done.is_set()
        return during

    with ThreadPoolExecutor(4) as pool:
        listers = [pool.submit(watch_lists, name) for name in customers]
        creators = [pool.submit(create, name) for name in customers]
        for creator in creators:
            creator.result(timeout=120)
        done.set()
        lists = [lister.result(timeout=120) for lister in listers]

    assert intrusions == [], f"a customer saw another's orders: {intrusions[:5]}"
    assert min(lists) >= 1, "no list ran while the orders were created"
    for name, created in customers.items():
        request = orders_pb2.ListOrdersRequest(page_size=1000)
        listed = [o.order_id for page in every_page(stubs[name].ListOrders, request, timeout=30)
                  for o in page.orders]
        assert sorted(listed) == sorted(created)
        other = next(n for n in customers if n != name)
        foreign = customers[other][0]
        with pytest.raises(Exception) as hidden:
            stubs[name].GetOrder(orders_pb2.GetOrderRequest(order_id=foreign), timeout=30)
        assert hidden.value.code().name == "NOT_FOUND"  # type: ignore[attr-defined]
