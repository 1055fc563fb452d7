"""The business series move by exactly what happened, counted where it committed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from services.common.proto.fulfillment.inventory.v1 import reservation_service_pb2 as reservation_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.metrics.conftest import CUSTOMER_PREFIX
from tests.metrics.scrape import Scrape, delta
from tests.orders.integration.clients import Clients, Status, order_request, rpc_code, sql
from tests.orders.integration.servers import OrdersServer
from tests.support import wait_until

pytestmark = pytest.mark.integration

CREATED = "fulfillment_orders_created_total"
TRANSITIONS = "fulfillment_order_transitions_total"
RESERVATIONS = "fulfillment_reservations_total"
BULK_ITEMS = "fulfillment_bulk_items_total"
WATCHES = "fulfillment_watch_streams_open"
HANDLED = "grpc_server_handled_total"
ORDER_SERVICE = "fulfillment.orders.v1.OrderService"


def customer() -> str:
    return f"{CUSTOMER_PREFIX}{uuid.uuid4().hex[:10]}"


def test_each_created_order_counts_once_and_a_repeated_request_id_does_not(
    clients: Clients, read_metrics: Callable[[], Scrape]
) -> None:
    product = clients.create_product()
    name = customer()
    before = read_metrics()
    for _ in range(5):
        clients.create_order(name, [(product, 1)])
    first = clients.create_order(name, [(product, 2)], request_id="metrics-once")
    again = clients.create_order(name, [(product, 2)], request_id="metrics-once")
    after = read_metrics()

    assert again.order_id == first.order_id
    assert delta(before, after, CREATED) == 6
    calls = {"grpc_service": ORDER_SERVICE, "grpc_method": "CreateOrder", "grpc_code": "OK"}
    assert delta(before, after, HANDLED, **calls) == 7


def test_bulk_items_count_by_outcome_and_only_new_orders_count_as_created(
    clients: Clients, read_metrics: Callable[[], Scrape]
) -> None:
    product = clients.create_product()
    name = customer()
    requests = [
        order_request(name, [(product, 1)], request_id="bulk-a"),
        order_request(name, [(product, 1)]),
        order_request(name, [(product, 1)], request_id="bulk-a"),  # the first one's order again
        order_request(name, []),  # no items: INVALID_ARGUMENT
    ]
    before = read_metrics()
    results = list(clients.orders.BulkCreateOrders(iter(requests), timeout=30))
    after = read_metrics()

    assert [r.status.code for r in results] == [0, 0, 0, grpc.StatusCode.INVALID_ARGUMENT.value[0]]
    assert delta(before, after, BULK_ITEMS, outcome="created") == 2
    assert delta(before, after, BULK_ITEMS, outcome="repeat") == 1
    assert delta(before, after, BULK_ITEMS, outcome="rejected") == 1
    assert delta(before, after, CREATED) == 2


def test_reservations_count_reserved_short_and_repeat(
    clients: Clients, read_metrics: Callable[[], Scrape]
) -> None:
    product = clients.create_product(stock=5)

    def reserve(order_id: str, quantity: int) -> grpc.StatusCode:
        request = reservation_pb2.ReserveStockRequest(
            order_id=order_id, items=[reservation_pb2.ReservationItem(product_id=product, quantity=quantity)]
        )
        return rpc_code(lambda: clients.reservations.ReserveStock(request, timeout=10))

    held, refused = str(uuid.uuid4()), str(uuid.uuid4())
    before = read_metrics()
    assert reserve(held, 3) is grpc.StatusCode.OK
    assert reserve(held, 3) is grpc.StatusCode.OK  # the same order again: nothing more held
    assert reserve(refused, 4) is grpc.StatusCode.FAILED_PRECONDITION
    assert reserve(refused, 4) is grpc.StatusCode.FAILED_PRECONDITION
    after = read_metrics()

    assert clients.stock(product) == 2
    assert delta(before, after, RESERVATIONS, outcome="reserved") == 1
    assert delta(before, after, RESERVATIONS, outcome="short") == 1
    assert delta(before, after, RESERVATIONS, outcome="repeat") == 2


def test_a_transition_raced_by_many_counts_once_and_so_does_a_cancel(
    clients: Clients, read_metrics: Callable[[], Scrape]
) -> None:
    order = clients.create_order(customer(), [(clients.create_product(), 1)])
    before = read_metrics()
    barrier = threading.Barrier(8)

    def advance(_: int) -> bool:
        barrier.wait(10)
        return clients.advance(order.order_id, Status.PENDING, Status.PROCESSING).applied

    with ThreadPoolExecutor(8) as pool:
        applied = list(pool.map(advance, range(8)))

    def cancel(_: int) -> grpc.StatusCode:
        barrier.wait(10)
        request = orders_pb2.CancelOrderRequest(order_id=order.order_id, reason="metrics")
        return rpc_code(lambda: clients.orders.CancelOrder(request, timeout=10))

    barrier.reset()
    with ThreadPoolExecutor(8) as pool:
        canceled = list(pool.map(cancel, range(8)))
    after = read_metrics()

    assert applied.count(True) == 1
    assert canceled.count(grpc.StatusCode.OK) == 1
    assert delta(before, after, TRANSITIONS, from_status="PENDING", to_status="PROCESSING") == 1
    assert delta(before, after, TRANSITIONS, from_status="PROCESSING", to_status="CANCELED") == 1
    assert delta(before, after, TRANSITIONS, from_status="PENDING", to_status="CANCELED") == 0


def test_a_watch_stream_is_open_while_watched_and_counted_when_it_ends(
    clients: Clients, read_metrics: Callable[[], Scrape]
) -> None:
    order = clients.create_order(customer(), [(clients.create_product(), 1)])
    before = read_metrics()
    stream = clients.orders.WatchOrder(orders_pb2.WatchOrderRequest(order_id=order.order_id), timeout=30)
    assert next(stream).status == Status.PENDING
    assert delta(before, read_metrics(), WATCHES) == 1
    stream.cancel()
    labels = {"grpc_service": ORDER_SERVICE, "grpc_method": "WatchOrder"}
    # The gauge drops as the handler ends, the RPC is counted an instant later: wait for both.
    ended = wait_until(
        lambda: (s := read_metrics()).value(WATCHES) == before.value(WATCHES)
        and delta(before, s, HANDLED, **labels, grpc_code="CANCELLED") > 0 and s,
        timeout=10, what="the watch stream to close and be counted",
    )
    assert delta(before, ended, HANDLED, **labels, grpc_code="CANCELLED") == 1
    assert delta(before, ended, "grpc_server_handling_seconds_count", **labels) == 1

    # A stream that ends by itself, at a terminal order, counts OK.
    clients.orders.CancelOrder(orders_pb2.CancelOrderRequest(order_id=order.order_id), timeout=10)
    statuses = [o.status for o in clients.orders.WatchOrder(
        orders_pb2.WatchOrderRequest(order_id=order.order_id), timeout=30
    )]
    assert statuses == [Status.CANCELED]
    finished = wait_until(
        lambda: delta(ended, s := read_metrics(), HANDLED, **labels, grpc_code="OK") > 0 and s,
        timeout=10, what="the ended stream to be counted",
    )
    assert delta(ended, finished, HANDLED, **labels, grpc_code="OK") == 1


def test_orders_by_status_is_the_databases_count(
    clients: Clients, orders_server: OrdersServer, database_url: str, read_metrics: Callable[[], Scrape]
) -> None:
    clients.create_order(customer(), [(clients.create_product(), 1)])
    refresher = orders_server.app.status_counts
    assert refresher is not None, "metrics are on"
    orders_server.background.call(refresher.refresh())
    after = read_metrics()

    counted = dict(sql(database_url, "SELECT status, count(*) FROM orders.orders GROUP BY status"))
    for status in ("PENDING", "PROCESSING", "PACKAGING", "SHIPPED", "DELIVERED", "CANCELED", "FAILED"):
        assert after.value("fulfillment_orders", status=status) == counted.get(status, 0), status
    assert after.types["fulfillment_orders"] == "gauge"
