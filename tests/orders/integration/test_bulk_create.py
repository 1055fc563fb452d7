"""BulkCreateOrders against real servers: exact per-item outcomes, the cap, hang-ups."""

from __future__ import annotations

import queue
import threading
from dataclasses import replace

import grpc
import pytest
from google.rpc import code_pb2

from services.common.pagination import every_page
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.auth import authorized_channel
from tests.orders.integration.clients import (
    Status,
    first_step_tasks_for,
    order_request,
    orders_stub,
    unique_name,
)
from tests.orders.integration.servers import start_orders_server
from tests.support import wait_until

pytestmark = pytest.mark.integration

UNKNOWN_PRODUCT = 9_000_000_000_000
OTHER_UNKNOWN_PRODUCT = 9_000_000_000_001


def list_customer_orders(clients, customer: str) -> list[orders_pb2.Order]:
    request = orders_pb2.ListOrdersRequest(customer_name=customer, page_size=1000)
    return [o for page in every_page(clients.orders.ListOrders, request, timeout=30) for o in page.orders]


def test_bulk_of_1000_fails_exactly_the_bad_items_and_creates_the_rest(clients, redis_url):
    first, second = clients.create_product("2.00"), clients.create_product("3.50")
    customer, run = unique_name("bulk"), unique_name("bulk-req")
    requests = [
        order_request(customer, [(first, 1 + i % 3), (second, 1)], f"{run}-{i}") for i in range(1000)
    ]
    requests[10] = order_request(customer, [(first, 1), (UNKNOWN_PRODUCT, 1)], f"{run}-10")
    requests[250] = order_request(customer, [(first, 0)], f"{run}-250")
    requests[500] = order_request("", [(first, 1)], f"{run}-500")
    requests[600] = order_request(customer, [(OTHER_UNKNOWN_PRODUCT, 1)], f"{run}-600")
    requests[601] = order_request(
        customer, [(second, 1), (OTHER_UNKNOWN_PRODUCT, 1), (UNKNOWN_PRODUCT, 1)], f"{run}-601"
    )
    # Reuses the request_id of item 100 with another body: rejected like a retry would be.
    requests[750] = order_request(customer, [(second, 7)], f"{run}-100")
    # Repeats item 200 exactly: answered with item 200's order, as a retry.
    requests[900] = requests[200]
    expected_failures = {
        10: code_pb2.NOT_FOUND,
        250: code_pb2.INVALID_ARGUMENT,
        500: code_pb2.INVALID_ARGUMENT,
        600: code_pb2.NOT_FOUND,
        601: code_pb2.NOT_FOUND,
        750: code_pb2.INVALID_ARGUMENT,
    }

    results = list(clients.orders.BulkCreateOrders(iter(requests), timeout=60))

    assert [r.index for r in results] == list(range(1000))
    assert [r.request_id for r in results] == [r.request_id for r in requests]
    failures = {r.index: r.status.code for r in results if r.status.code != code_pb2.OK}
    assert failures == expected_failures
    assert str(UNKNOWN_PRODUCT) in results[10].status.message
    assert str(OTHER_UNKNOWN_PRODUCT) in results[600].status.message
    assert str(UNKNOWN_PRODUCT) in results[601].status.message
    assert str(OTHER_UNKNOWN_PRODUCT) in results[601].status.message
    assert "items[1]" in results[601].status.message
    assert "items[2]" in results[601].status.message
    assert "items[0]" not in results[601].status.message
    assert "items[0].quantity" in results[250].status.message
    assert all(not results[i].HasField("order") for i in expected_failures)
    assert results[900].order == results[200].order
    for result, request in zip(results, requests, strict=True):
        if result.status.code == code_pb2.OK:
            assert result.order.status == Status.PENDING
            assert [(i.product_id, i.quantity) for i in result.order.items] == [
                (i.product_id, i.quantity) for i in request.items
            ]

    created = {r.order.order_id for r in results if r.status.code == code_pb2.OK}
    assert len(created) == 1000 - len(expected_failures) - 1
    assert {o.order_id for o in list_customer_orders(clients, customer)} == created
    assert sorted(first_step_tasks_for(redis_url, created)) == sorted(created)


def test_a_stream_mixing_new_repeated_and_invalid_items_answers_each_exactly(clients, redis_url):
    product = clients.create_product("4.00")
    customer, run = unique_name("bulk-mixed"), unique_name("bulk-mixed-req")
    (earlier,) = list(
        clients.orders.BulkCreateOrders(
            iter([order_request(customer, [(product, 1)], f"{run}-old")]), timeout=30
        )
    )
    requests = [
        order_request(customer, [(product, 2)], f"{run}-new"),
        order_request(customer, [(product, 1)], f"{run}-old"),
        order_request("", [(product, 1)], f"{run}-bad"),
        order_request(customer, [(product, 2)], f"{run}-new"),
        order_request(customer, [(product, 3)], f"{run}-old"),
        order_request(customer, [(product, 3)], f"{run}-new"),
        order_request(customer, [(UNKNOWN_PRODUCT, 1)], f"{run}-unknown"),
    ]

    results = list(clients.orders.BulkCreateOrders(iter(requests), timeout=30))

    codes = [r.status.code for r in results]
    assert codes == [
        code_pb2.OK, code_pb2.OK, code_pb2.INVALID_ARGUMENT, code_pb2.OK,
        code_pb2.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT, code_pb2.NOT_FOUND,
    ]
    assert results[1].order == earlier.order
    assert results[3].order == results[0].order
    assert results[0].order.order_id != earlier.order.order_id
    created = {earlier.order.order_id, results[0].order.order_id}
    assert {o.order_id for o in list_customer_orders(clients, customer)} == created
    assert sorted(first_step_tasks_for(redis_url, created)) == sorted(created)


def test_items_past_the_cap_are_refused_and_the_rest_created(orders_settings, clients):
    product = clients.create_product()
    customer = unique_name("capped")
    server = start_orders_server(replace(orders_settings, bulk_max_items=5))
    try:
        with authorized_channel(server.addr, orders_settings) as channel:
            requests = [order_request(customer, [(product, 1)]) for _ in range(8)]
            results = list(orders_stub(channel).BulkCreateOrders(iter(requests), timeout=30))
    finally:
        server.background.stop()
    assert [r.status.code for r in results] == [code_pb2.OK] * 5 + [code_pb2.RESOURCE_EXHAUSTED] * 3
    assert "at most 5 orders" in results[5].status.message
    assert len(list_customer_orders(clients, customer)) == 5


def test_a_client_hanging_up_mid_stream_keeps_every_acknowledged_order(clients):
    product = clients.create_product()
    customer = unique_name("hang-up")
    outbox: queue.Queue[orders_pb2.CreateOrderRequest | None] = queue.Queue()

    def requests():
        while (request := outbox.get(timeout=30)) is not None:
            yield request

    call = clients.orders.BulkCreateOrders(requests(), timeout=60)
    acknowledged = []
    for _ in range(5):
        outbox.put(order_request(customer, [(product, 2)]))
        acknowledged.append(next(call))
    # More requests in flight, then the client goes away without waiting for them.
    for _ in range(20):
        outbox.put(order_request(customer, [(product, 2)]))
    call.cancel()
    outbox.put(None)
    cancelled = threading.Event()
    try:
        for _ in call:
            pass
    except grpc.RpcError as exc:
        cancelled.set()
        assert exc.code() == grpc.StatusCode.CANCELLED
    assert cancelled.is_set()

    for result in acknowledged:
        assert result.status.code == code_pb2.OK
        assert clients.get(result.order.order_id) == result.order
    # Whatever else got in is whole: items and its first history row.
    stored = wait_until(lambda: list_customer_orders(clients, customer), timeout=10)
    assert 5 <= len(stored) <= 25
    for order in stored:
        assert [(i.product_id, i.quantity) for i in order.items] == [(product, 2)]
        assert [e.to_status for e in clients.history(order.order_id)] == [Status.PENDING]
