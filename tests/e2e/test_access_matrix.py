"""End-to-end: who may call what, over direct gRPC and over HTTP through Envoy, as the
contract's "Identity and access" says: every RPC of the four services against every role
(no token, admin, customer, service), then a customer's view of another's orders.

The expected table below is written from the contract, not read from the code's policy
table, so a drift in either fails here."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as inv
from services.common.proto.fulfillment.inventory.v1 import reservation_service_pb2 as res
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as life
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as ords
from tests.auth import bearer, token
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

A, C, S = "admin", "customer", "service"
ROLES = {A: Role.ADMIN, C: Role.CUSTOMER, S: Role.SERVICE}
OWNER = "matrix-owner"

# The contract: admin every public RPC; customer the catalogue reads and the order RPCs
# (on its own orders); service the internal services and the reads its callers make.
EXPECTED: dict[str, set[str]] = {
    "InventoryService/CreateProduct": {A},
    "InventoryService/GetProduct": {A, C, S},
    "InventoryService/ListProducts": {A, C, S},
    "InventoryService/BatchGetProducts": {A, S},
    "InventoryService/SetStock": {A},
    "InventoryService/AdjustStock": {A},
    "InventoryService/GetStock": {A, C, S},
    "ReservationService/ReserveStock": {S},
    "ReservationService/ReleaseStock": {S},
    "OrderService/CreateOrder": {A, C},
    "OrderService/BulkCreateOrders": {A, C},
    "OrderService/GetOrder": {A, C, S},
    "OrderService/ListOrders": {A, C},
    "OrderService/ListOrderHistory": {A, C},
    "OrderService/CancelOrder": {A, C},
    "OrderService/WatchOrder": {A, C},
    "OrderService/SummarizeOrders": {A},
    "OrderLifecycleService/AdvanceOrder": {S},
    "OrderLifecycleService/ClaimStaleOrders": {S},
}
PACKAGE = {
    "InventoryService": "fulfillment.inventory.v1",
    "ReservationService": "fulfillment.inventory.v1",
    "OrderService": "fulfillment.orders.v1",
    "OrderLifecycleService": "fulfillment.orders.v1",
}


@dataclass
class World:
    stack: Stack
    settings: Settings
    product_id: int
    order_id: str

    def addr(self, service: str) -> str:
        inventory = PACKAGE[service].endswith("inventory.v1")
        return self.stack.inventory_addr if inventory else self.stack.orders_addr


@pytest.fixture(scope="module")
def world(stack: Stack, settings: Settings) -> World:
    admin = (("authorization", f"Bearer {token(settings, Role.ADMIN)}"),)
    with grpc.insecure_channel(stack.inventory_addr) as channel:
        product = channel.unary_unary(
            "/fulfillment.inventory.v1.InventoryService/CreateProduct",
            request_serializer=inv.CreateProductRequest.SerializeToString,
            response_deserializer=inv.Product.FromString,
        )(
            inv.CreateProductRequest(
                sku=f"matrix-{uuid.uuid4().hex[:10]}", name="Matrix", price="1.00", initial_stock=10**6
            ),
            metadata=admin, timeout=15,
        )
    owner = (("authorization", f"Bearer {token(settings, Role.CUSTOMER, OWNER)}"),)
    with grpc.insecure_channel(stack.orders_addr) as channel:
        order = channel.unary_unary(
            "/fulfillment.orders.v1.OrderService/CreateOrder",
            request_serializer=ords.CreateOrderRequest.SerializeToString,
            response_deserializer=ords.Order.FromString,
        )(
            ords.CreateOrderRequest(
                customer_name="Matrix",
                items=[ords.CreateOrderItem(product_id=product.product_id, quantity=1)],
            ),
            metadata=owner, timeout=15,
        )
    return World(stack, settings, product.product_id, order.order_id)


def request_for(rpc: str, world: World) -> Any:
    """A request each RPC could well serve: existing ids, harmless changes."""
    pid, oid = world.product_id, world.order_id
    return {
        "InventoryService/CreateProduct": lambda: inv.CreateProductRequest(
            sku=f"m-{uuid.uuid4().hex[:10]}", name="M", price="1.00"
        ),
        "InventoryService/GetProduct": lambda: inv.GetProductRequest(product_id=pid),
        "InventoryService/ListProducts": lambda: inv.ListProductsRequest(page_size=1),
        "InventoryService/BatchGetProducts": lambda: inv.BatchGetProductsRequest(product_ids=[pid]),
        "InventoryService/SetStock": lambda: inv.SetStockRequest(product_id=pid, stock_level=10**6),
        "InventoryService/AdjustStock": lambda: inv.AdjustStockRequest(product_id=pid, delta=1),
        "InventoryService/GetStock": lambda: inv.GetStockRequest(product_id=pid),
        "ReservationService/ReserveStock": lambda: res.ReserveStockRequest(
            order_id=str(uuid.uuid4()), items=[res.ReservationItem(product_id=pid, quantity=1)]
        ),
        "ReservationService/ReleaseStock": lambda: res.ReleaseStockRequest(order_id=str(uuid.uuid4())),
        "OrderService/CreateOrder": lambda: ords.CreateOrderRequest(
            customer_name="M", items=[ords.CreateOrderItem(product_id=pid, quantity=1)]
        ),
        "OrderService/BulkCreateOrders": lambda: ords.CreateOrderRequest(
            customer_name="M", items=[ords.CreateOrderItem(product_id=pid, quantity=1)]
        ),
        "OrderService/GetOrder": lambda: ords.GetOrderRequest(order_id=oid),
        "OrderService/ListOrders": lambda: ords.ListOrdersRequest(page_size=1),
        "OrderService/ListOrderHistory": lambda: ords.ListOrderHistoryRequest(order_id=oid),
        "OrderService/CancelOrder": lambda: ords.CancelOrderRequest(order_id=str(uuid.uuid4())),
        "OrderService/WatchOrder": lambda: ords.WatchOrderRequest(order_id=str(uuid.uuid4())),
        "OrderService/SummarizeOrders": lambda: ords.SummarizeOrdersRequest(),
        "OrderLifecycleService/AdvanceOrder": lambda: life.AdvanceOrderRequest(
            order_id=str(uuid.uuid4()), expected_status=ords.Order.PENDING,
            to_status=ords.Order.PROCESSING,
        ),
        "OrderLifecycleService/ClaimStaleOrders": lambda: life.ClaimStaleOrdersRequest(
            limit=1, stale_after_seconds=10**6, lease_seconds=1
        ),
    }[rpc]()


def grpc_code(world: World, rpc: str, role: str | None) -> grpc.StatusCode:
    service, _, _ = rpc.partition("/")
    metadata = bearer(world.settings, ROLES[role]) if role else ()
    request = request_for(rpc, world)
    with grpc.insecure_channel(world.addr(service)) as channel:
        method = f"/{PACKAGE[service]}.{rpc}"
        try:
            if rpc.endswith("BulkCreateOrders"):
                call = channel.stream_stream(method, request_serializer=lambda m: m.SerializeToString())
                list(call(iter([request]), metadata=metadata, timeout=15))
            elif rpc.endswith("WatchOrder"):
                call = channel.unary_stream(method, request_serializer=lambda m: m.SerializeToString())
                list(call(request, metadata=metadata, timeout=15))
            else:
                call = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString())
                call(request, metadata=metadata, timeout=15)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("rpc", sorted(EXPECTED))
def test_every_rpc_over_grpc_admits_exactly_the_roles_the_contract_names(world: World, rpc: str) -> None:
    assert grpc_code(world, rpc, None) is grpc.StatusCode.UNAUTHENTICATED
    for role in (A, C, S):
        code = grpc_code(world, rpc, role)
        if role in EXPECTED[rpc]:
            assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), (
                rpc, role, code,
            )
        else:
            assert code is grpc.StatusCode.PERMISSION_DENIED, (rpc, role, code)


def http(world: World, method: str, path: str, role: str | None, body: Any = None,
         subject: str = "") -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if role:
        headers["authorization"] = f"Bearer {token(world.settings, ROLES[role], subject)}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{world.stack.gateway}{path}", data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    text = raw.decode()
    try:
        return status, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, text


def http_routes(world: World) -> dict[str, Callable[[str | None], tuple[int, Any]]]:
    pid, oid = world.product_id, world.order_id
    item = {"product_id": pid, "quantity": 1}
    return {
        "InventoryService/CreateProduct": lambda r: http(
            world, "POST", "/v1/products", r, {"sku": f"h-{uuid.uuid4().hex[:10]}", "name": "H", "price": "1"}
        ),
        "InventoryService/GetProduct": lambda r: http(world, "GET", f"/v1/products/{pid}", r),
        "InventoryService/ListProducts": lambda r: http(world, "GET", "/v1/products?page_size=1", r),
        "InventoryService/SetStock": lambda r: http(
            world, "POST", f"/v1/products/{pid}/stock", r, {"stock_level": 10**6}
        ),
        "InventoryService/AdjustStock": lambda r: http(
            world, "POST", f"/v1/products/{pid}/stock:adjust", r, {"delta": 1}
        ),
        "InventoryService/GetStock": lambda r: http(world, "GET", f"/v1/products/{pid}/stock", r),
        "OrderService/CreateOrder": lambda r: http(
            world, "POST", "/v1/orders", r, {"customer_name": "H", "items": [item]}
        ),
        "OrderService/BulkCreateOrders": lambda r: http(
            world, "POST", "/v1/orders:bulkCreate", r, [{"customer_name": "H", "items": [item]}]
        ),
        "OrderService/GetOrder": lambda r: http(world, "GET", f"/v1/orders/{oid}", r),
        "OrderService/ListOrders": lambda r: http(world, "GET", "/v1/orders?page_size=1", r),
        "OrderService/ListOrderHistory": lambda r: http(world, "GET", f"/v1/orders/{oid}/history", r),
        "OrderService/CancelOrder": lambda r: http(
            world, "POST", f"/v1/orders/{uuid.uuid4()}:cancel", r, {}
        ),
        "OrderService/SummarizeOrders": lambda r: http(world, "GET", "/v1/orders:summarize", r),
    }


def test_every_routed_rpc_over_http_answers_401_403_or_serves_as_the_contract_says(world: World) -> None:
    for rpc, call in http_routes(world).items():
        status, body = call(None)
        assert (status, body["code"]) == (401, 16), (rpc, status, body)
        for role in (A, C, S):
            status, body = call(role)
            if role in EXPECTED[rpc]:
                assert status not in (401, 403), (rpc, role, status, body)
            else:
                assert (status, body["code"]) == (403, 7), (rpc, role, status, body)


def test_internal_services_are_not_routed_over_http_whatever_the_token(world: World) -> None:
    for path in (
        "/fulfillment.inventory.v1.ReservationService/ReserveStock",
        "/fulfillment.orders.v1.OrderLifecycleService/AdvanceOrder",
    ):
        for role in (None, A, S):
            status, _ = http(world, "POST", path, role, {})
            assert status in (401, 404, 415), (path, role, status)
            assert status != 200


def test_another_customers_order_is_not_found_exactly_like_a_missing_one(world: World) -> None:
    missing = str(uuid.uuid4())
    for suffix in ("", "/history"):
        hidden = http(world, "GET", f"/v1/orders/{world.order_id}{suffix}", C, subject="someone-else")
        absent = http(world, "GET", f"/v1/orders/{missing}{suffix}", C, subject="someone-else")
        assert hidden[0] == absent[0] == 404
        assert hidden[1]["message"] == absent[1]["message"].replace(missing, world.order_id)
        own = http(world, "GET", f"/v1/orders/{world.order_id}{suffix}", C, subject=OWNER)
        assert own[0] == 200
    status, body = http(world, "POST", f"/v1/orders/{world.order_id}:cancel", C, {}, subject="someone-else")
    assert status == 404, body
    status, body = http(world, "GET", "/v1/orders?customer_id=" + OWNER, C, subject="someone-else")
    assert (status, body["code"]) == (403, 7)
    status, body = http(world, "GET", "/v1/orders?customer_id=" + OWNER, A)
    assert status == 200 and [o["order_id"] for o in body["orders"]] == [world.order_id]


def test_a_token_in_the_query_string_is_not_a_token(world: World) -> None:
    raw = token(world.settings, Role.ADMIN)
    for name in ("access_token", "token", "authorization"):
        status, body = http(world, "GET", f"/v1/products/{world.product_id}?{name}={raw}", None)
        assert (status, body["code"]) == (401, 16)
        assert raw not in json.dumps(body)


@pytest.fixture(scope="module", autouse=True)
def no_token_in_any_log_line(stack: Stack, settings: Settings) -> Iterator[None]:
    """After this module's calls (valid, refused, in a query string), no process of the
    stack logged any token it was shown."""
    yield
    output = stack.process.output()
    for role in Role:
        for subject in ("", OWNER, "someone-else"):
            minted = token(settings, role, subject)
            assert minted not in output, f"a {role.value} token appears in the stack's logs"
            assert minted.split(".")[2] not in output, "a token's signature appears in the logs"
