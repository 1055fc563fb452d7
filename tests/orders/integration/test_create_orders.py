"""CreateOrder against real servers: idempotency under concurrency, pricing, outages."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial

import grpc
import pytest

import services.inventory.app as inventory_app
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.auth import authorized_channel, secured_by
from tests.orders.integration.clients import (
    Clients,
    Status,
    first_step_tasks_for,
    order_request,
    orders_stub,
    sql,
    unique_name,
)
from tests.orders.integration.conftest import start_orders_server
from tests.support import BackgroundServer, free_port

pytestmark = pytest.mark.integration


def test_50_concurrent_creates_sharing_10_request_ids_make_10_orders_and_10_tasks(
    clients, redis_url
):
    product = clients.create_product()
    customer = unique_name("concurrent")
    run = unique_name("req")
    requests = [
        order_request(customer, [(product, key + 1)], request_id=f"{run}-{key}")
        for key in range(10)
        for _attempt in range(5)
    ]
    with ThreadPoolExecutor(50) as pool:
        orders = list(pool.map(lambda r: clients.orders.CreateOrder(r, timeout=30), requests))

    by_key: dict[str, set[str]] = {}
    for request, order in zip(requests, orders, strict=True):
        by_key.setdefault(request.request_id, set()).add(order.order_id)
        assert order.items[0].quantity == request.items[0].quantity
    assert all(len(ids) == 1 for ids in by_key.values()), by_key
    order_ids = {order.order_id for order in orders}
    assert len(order_ids) == 10

    listed = clients.orders.ListOrders(
        orders_pb2.ListOrdersRequest(customer_name=customer, page_size=100), timeout=30
    ).orders
    assert {o.order_id for o in listed} == order_ids
    tasks = first_step_tasks_for(redis_url, order_ids)
    assert sorted(tasks) == sorted(order_ids)


def test_new_order_snapshots_prices_keeps_item_order_and_starts_pending(clients):
    cheap, dear = clients.create_product("0.99"), clients.create_product("1200.50")
    name = unique_name()
    order = clients.create_order(f"  {name}  ", [(dear, 2), (cheap, 5)])
    assert order.status == Status.PENDING
    assert order.customer_name == name
    assert [(i.product_id, i.quantity, i.unit_price) for i in order.items] == [
        (dear, 2, "1200.50"), (cheap, 5, "0.99"),
    ]
    assert order.status_note == "order received"
    assert order.next_step_due_time.ToDatetime() > order.create_time.ToDatetime()
    (entry,) = clients.history(order.order_id)
    assert (entry.from_status, entry.to_status) == (Status.STATUS_UNSPECIFIED, Status.PENDING)
    assert clients.get(order.order_id) == order


def test_same_request_id_with_a_different_body_is_rejected(clients):
    product = clients.create_product()
    customer, request_id = unique_name(), unique_name("req")
    original = clients.create_order(customer, [(product, 1)], request_id)
    with pytest.raises(grpc.RpcError) as rejected:
        clients.create_order(customer, [(product, 2)], request_id)
    assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "already used for a different order" in rejected.value.details()
    assert clients.create_order(customer, [(product, 1)], request_id) == original


def test_inventory_down_is_unavailable_and_writes_nothing(orders_settings, database_url):
    settings = replace(
        orders_settings, inventory_addr=f"127.0.0.1:{free_port()}", grpc_deadline_s=1.0
    )
    server = start_orders_server(settings)
    customer = unique_name("no-inventory")
    try:
        with authorized_channel(server.addr, settings) as channel:
            stub = orders_stub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.CreateOrder(order_request(customer, [(1, 1)], unique_name("r")), timeout=30)
    finally:
        server.background.stop()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "inventory service unavailable" in refused.value.details()
    assert sql(database_url, "SELECT 1 FROM orders.orders WHERE customer_name = %s", (customer,)) == []


def test_known_prices_are_reused_so_an_inventory_outage_refuses_only_new_products(
    orders_settings, settings, clients
):
    # A private inventory, so that stopping it leaves the shared one alone.
    inventory = BackgroundServer(partial(inventory_app.build, settings), secured_by(settings)).start()
    try:
        server = start_orders_server(
            replace(orders_settings, inventory_addr=inventory.addr, grpc_deadline_s=1.0)
        )
    except BaseException:
        inventory.stop()
        raise
    try:
        with Clients.connect(server.addr, inventory.addr, settings) as own:
            seen, unseen = own.create_product(price="4.20"), own.create_product(price="1.00")
            first = own.create_order(unique_name(), [(seen, 2)])
            inventory.stop()
            again = own.orders.CreateOrder(order_request(unique_name(), [(seen, 1)]), timeout=30)
            with pytest.raises(grpc.RpcError) as refused:
                own.orders.CreateOrder(
                    order_request(unique_name(), [(seen, 1), (unseen, 1)]), timeout=30
                )
    finally:
        server.background.stop()
        inventory.stop()
    assert [i.unit_price for i in first.items] == [i.unit_price for i in again.items] == ["4.20"]
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_broker_down_still_takes_the_order_for_the_stale_monitor_to_drive(
    orders_settings, clients
):
    settings = replace(orders_settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    product = clients.create_product()
    server = start_orders_server(settings)
    try:
        with authorized_channel(server.addr, settings) as channel:
            stub = orders_stub(channel)
            order = stub.CreateOrder(order_request(unique_name(), [(product, 1)]), timeout=30)
    finally:
        server.background.stop()
    assert order.status == Status.PENDING
    assert order.HasField("next_step_due_time")
    # Stored as answered (read through the shared server): PENDING with the due time the
    # stale monitor goes by.
    assert clients.get(order.order_id) == order
