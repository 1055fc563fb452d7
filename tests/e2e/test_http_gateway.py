"""Every public RPC over HTTP/JSON through the real Envoy, with the whole stack running."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.common.auth.principal import Role
from services.common.lifecycle.status import NORMAL_PATH, OrderStatus
from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2,
    reservation_service_pb2_grpc,
)
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2
from services.devtools.processes import command_line, descendants
from tests.e2e.conftest import Stack
from tests.support import wait_until

pytestmark = pytest.mark.e2e

TERMINAL = {OrderStatus.DELIVERED, OrderStatus.FAILED, OrderStatus.CANCELED}


def _product(stack: Stack, stock: int = 10, price: str = "12.50") -> dict[str, Any]:
    status, body = stack.http(
        "POST",
        "/v1/products",
        {
            "sku": f"http-{uuid.uuid4().hex[:10]}",
            "name": "Widget",
            "description": "d",
            "price": price,
            "initial_stock": stock,
        },
    )
    assert status == 200, body
    return body


def _wait_terminal(stack: Stack, order_id: str, timeout: float = 60) -> dict[str, Any]:
    def terminal() -> dict[str, Any] | None:
        _, order = stack.http("GET", f"/v1/orders/{order_id}")
        return order if order["status"] in TERMINAL else None

    return wait_until(terminal, timeout=timeout, interval=0.1, what=f"order {order_id} to end")


def test_products_and_stock_over_http(stack: Stack) -> None:
    product = _product(stack, stock=7, price="1200.99")
    pid = product["product_id"]
    assert product["price"] == "1200.99"
    assert product["stock_level"] in (7, "7")  # int64 is a JSON string by proto3 rules
    assert {"sku", "name", "create_time"} <= product.keys()

    status, got = stack.http("GET", f"/v1/products/{pid}")
    assert status == 200 and got["sku"] == product["sku"]

    status, page = stack.http("GET", "/v1/products?page_size=2&unknown_param=1")
    assert status == 200 and len(page["products"]) <= 2 and "products" in page

    status, stock = stack.http("POST", f"/v1/products/{pid}/stock", {"stock_level": 20})
    assert status == 200 and int(stock["stock_level"]) == 20
    status, stock = stack.http("POST", f"/v1/products/{pid}/stock:adjust", {"delta": -5})
    assert status == 200 and int(stock["stock_level"]) == 15
    status, stock = stack.http("GET", f"/v1/products/{pid}/stock")
    assert (
        status == 200 and int(stock["stock_level"]) == 15 and int(stock["product_id"]) == int(pid)
    )

    status, error = stack.http("POST", f"/v1/products/{pid}/stock:adjust", {"delta": -100})
    assert status in (400, 409, 412), (status, error)
    assert error["message"] and error["code"] == 9  # FAILED_PRECONDITION
    assert int(stack.http("GET", f"/v1/products/{pid}/stock")[1]["stock_level"]) == 15


def test_order_walkthrough_over_http(stack: Stack) -> None:
    product = _product(stack, stock=5)
    pid = product["product_id"]
    status, order = stack.http(
        "POST",
        "/v1/orders",
        {
            "customer_name": "Ada",
            "items": [{"product_id": str(pid), "quantity": 2}],
            "request_id": uuid.uuid4().hex,
        },
    )
    assert status == 200, order
    assert order["status"] == OrderStatus.PENDING
    assert order["items"][0]["unit_price"] == "12.50"
    assert {"order_id", "customer_name", "create_time", "update_time"} <= order.keys()
    order_id = order["order_id"]

    final = _wait_terminal(stack, order_id)
    assert final["status"] == OrderStatus.DELIVERED
    status, history = stack.http("GET", f"/v1/orders/{order_id}/history")
    assert status == 200
    assert [e["to_status"] for e in history["entries"]] == [
        OrderStatus.PENDING,
        OrderStatus.PROCESSING,
        OrderStatus.PACKAGING,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
    ]
    assert int(stack.http("GET", f"/v1/products/{pid}/stock")[1]["stock_level"]) == 3

    status, listed = stack.http(
        "GET", "/v1/orders?customer_name=Ada&status=DELIVERED&page_size=100"
    )
    assert status == 200
    assert order_id in {o["order_id"] for o in listed["orders"]}

    status, error = stack.http("POST", f"/v1/orders/{order_id}:cancel", {"reason": "too late"})
    assert status in (400, 409, 412) and error["code"] == 9 and OrderStatus.DELIVERED in error["message"]


def test_cancel_over_http_returns_stock(stack: Stack) -> None:
    product = _product(stack, stock=4)
    pid = int(product["product_id"])

    def stock() -> int:
        return int(stack.http("GET", f"/v1/products/{pid}/stock")[1]["stock_level"])

    # The worker is paused, so the order stays PENDING (always cancelable) holding the
    # stock reserved for it here the way its PROCESSING step would reserve it.
    with _worker_paused(stack):
        status, order = stack.http(
            "POST", "/v1/orders", {"customer_name": "Bo", "items": [{"product_id": pid, "quantity": 1}]}
        )
        assert status == 200 and order["status"] == OrderStatus.PENDING, order
        # Directly, as the worker does it: a `service` caller.
        with grpc.insecure_channel(stack.inventory_addr) as channel:
            reserved = reservation_service_pb2_grpc.ReservationServiceStub(channel).ReserveStock(
                reservation_service_pb2.ReserveStockRequest(
                    order_id=order["order_id"],
                    items=[reservation_service_pb2.ReservationItem(product_id=pid, quantity=1)],
                ),
                timeout=10,
                metadata=stack.bearer(Role.SERVICE),
            )
        assert reserved.newly_reserved
        assert stock() == 3
        status, canceled = stack.http(
            "POST", f"/v1/orders/{order['order_id']}:cancel", {"reason": "changed mind"}
        )
        assert status == 200, canceled
        assert canceled["status"] == OrderStatus.CANCELED
        wait_until(lambda: stock() == 4, timeout=30, what="stock to come back")


@contextlib.contextmanager
def _worker_paused(stack: Stack) -> Iterator[None]:
    """The stack's lifecycle worker and its pool stopped (SIGSTOP) for the block, so no order
    moves meanwhile; continued (SIGCONT) on the way out, whatever happens."""
    # `up` starts each process in a session of its own: the worker leads its group.
    (worker,) = [
        pid
        for pid in descendants(stack.process.pid)
        if " services.cli worker " in command_line(pid) + " " and _group_of(pid) == pid
    ]
    os.killpg(worker, signal.SIGSTOP)
    try:
        wait_until(
            lambda: all(_stopped(pid) for pid in descendants(worker)),
            timeout=10, what="the worker and its pool to stop",
        )
        yield
    finally:
        os.killpg(worker, signal.SIGCONT)


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _stopped(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True  # gone: it runs nothing either
    return state == "T"


def test_bulk_create_over_http(stack: Stack) -> None:
    product = _product(stack, stock=1000)
    bad = {17: "unknown", 50: "quantity", 83: "name"}
    body = []
    for i in range(100):
        item = {"product_id": product["product_id"], "quantity": 1}
        request = {
            "customer_name": f"bulk-{i}",
            "items": [item],
            "request_id": f"{uuid.uuid4().hex}-{i}",
        }
        if bad.get(i) == "unknown":
            item["product_id"] = 9_000_000_000 + i
        elif bad.get(i) == "quantity":
            item["quantity"] = 0
        elif bad.get(i) == "name":
            request["customer_name"] = ""
        body.append(request)
    status, results = stack.http("POST", "/v1/orders:bulkCreate", body, timeout=60)
    assert status == 200, results
    assert isinstance(results, list) and len(results) == 100
    assert [r.get("index", 0) for r in results] == list(range(100))
    failed = {r.get("index", 0) for r in results if r.get("status", {}).get("code", 0) != 0}
    assert failed == set(bad)
    assert all(
        r["order"]["status"] in NORMAL_PATH
        for r in results
        if r.get("index", 0) not in bad
    )


def test_watch_streams_states_to_delivered(stack: Stack) -> None:
    product = _product(stack, stock=3)
    _, order = stack.http(
        "POST",
        "/v1/orders",
        {
            "customer_name": "Watcher",
            "items": [{"product_id": product["product_id"], "quantity": 1}],
        },
    )
    host, port = stack.gateway.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", f"/v1/orders/{order['order_id']}:watch", headers=stack.authorization())
    response = conn.getresponse()
    assert response.status == 200
    states = [o["status"] for o in json.loads(response.read().decode())]
    conn.close()
    assert states[-1] == OrderStatus.DELIVERED
    assert states == sorted(set(states), key=states.index), states  # no repeats
    order_of = list(NORMAL_PATH)
    assert [order_of.index(s) for s in states] == sorted(order_of.index(s) for s in states)


def test_errors_are_json_with_http_codes(stack: Stack) -> None:
    status, body = stack.http(
        "POST",
        "/v1/orders",
        {"customer_name": "E", "items": [{"product_id": 8_999_999_999, "quantity": 1}]},
    )
    assert status in (400, 404) and body["code"] in (3, 5) and body["message"]

    status, body = stack.http("POST", "/v1/orders", b'{"customer_name": "E", "items": [')
    assert status == 400, body

    status, body = stack.http("POST", "/v1/orders", {"customer_name": "", "items": []})
    assert status == 400 and body["code"] == 3 and body["message"]

    status, body = stack.http("GET", f"/v1/orders/{uuid.uuid4()}")
    assert status == 404 and body["code"] == 5

    status, body = stack.http("GET", "/v1/products/not-a-number")
    assert status == 400

    status, body = stack.http("GET", "/v1/no/such/route", timeout=10)
    assert status == 404


def test_internal_services_are_not_reachable_through_the_gateway(stack: Stack) -> None:
    # Not even with the token of the `service` role, the one the services admit to them.
    service = stack.bearer(Role.SERVICE)
    gateway_addr = stack.gateway.removeprefix("http://")
    with grpc.insecure_channel(gateway_addr) as channel:
        release = channel.unary_unary(
            "/fulfillment.inventory.v1.ReservationService/ReleaseStock",
            request_serializer=reservation_service_pb2.ReleaseStockRequest.SerializeToString,
            response_deserializer=reservation_service_pb2.ReleaseStockResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as info:
            release(
                reservation_service_pb2.ReleaseStockRequest(order_id=str(uuid.uuid4())),
                timeout=10, metadata=service,
            )
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        claim = channel.unary_unary(
            "/fulfillment.orders.v1.OrderLifecycleService/ClaimStaleOrders",
            request_serializer=lifecycle_service_pb2.ClaimStaleOrdersRequest.SerializeToString,
            response_deserializer=lifecycle_service_pb2.ClaimStaleOrdersResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as info:
            claim(lifecycle_service_pb2.ClaimStaleOrdersRequest(limit=1), timeout=10, metadata=service)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    status, _ = stack.http(
        "POST", "/fulfillment.orders.v1.OrderLifecycleService/AdvanceOrder", {}, role=Role.SERVICE
    )
    assert status == 404
