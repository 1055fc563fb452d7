"""Hostile and edge requests through the real Envoy: each class answers the contract's HTTP
status with the JSON error {"code", "message", "details"}, never a 5xx from bad input."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import grpc
import pytest

from services.common.config import Settings
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2, orders_service_pb2_grpc
from services.stack_parts import http_answers
from tests.auth import bearer
from tests.auth_helpers import authorization_header
from tests.e2e.conftest import Stack
from tests.e2e.gateway_replies import assert_error, exchange, send
from tests.support import Process, free_port, fulfillment_command, wait_until

pytestmark = pytest.mark.e2e

INVALID_ARGUMENT, NOT_FOUND, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE = 3, 5, 4, 8, 14
UNARY_BODY_LIMIT = 1024 * 1024
BULK_BODY_LIMIT = 4 * 1024 * 1024
ORDER_ID = "6b1f0f4e-5d7f-4a55-9a55-0d5e3b1e9f00"


@pytest.mark.parametrize(
    "target, body",
    [
        ("/v1/orders", b"{"),
        ("/v1/orders", b'{"customer_name": "E", "items": ['),
        ("/v1/orders", b"not json"),
        ("/v1/orders", b'"a string"'),
        ("/v1/orders", b'{"items": "x"}'),
        ("/v1/orders", b'{"customer_name": "\xff"}'),
        ("/v1/orders", b'{"customer_name": "\\udc00"}'),
        ("/v1/orders:bulkCreate", b"{}"),
        ("/v1/orders:bulkCreate", b"[1, 2]"),
        ("/v1/products", b'{"price": {"units": 1}}'),
        ("/v1/products/1/stock", b'{"stock_level": "many"}'),
        (f"/v1/orders/{ORDER_ID}:cancel", b"[]"),
    ],
)
def test_bodies_the_transcoder_cannot_parse_answer_400(stack: Stack, target: str, body: bytes) -> None:
    assert_error(send(stack.gateway, "POST", target, body, stack.authorization()), 400, INVALID_ARGUMENT)


@pytest.mark.parametrize(
    "target",
    [
        "/v1/products/abc",
        "/v1/products/99999999999999999999/stock",
        "/v1/orders?status=FOO",
        "/v1/orders?page_size=abc",
        "/v1/products?page_size=99999999999",
    ],
)
def test_path_and_query_values_of_the_wrong_type_answer_400(stack: Stack, target: str) -> None:
    assert_error(send(stack.gateway, "GET", target, headers=stack.authorization()), 400, INVALID_ARGUMENT)


@pytest.mark.parametrize(
    "method, target",
    [
        ("GET", "/v1/orders/%FF"),
        ("GET", "/v1/orders/%C0%AE/history"),
        ("GET", "/v1/orders/%ED%A0%80"),
        ("GET", "/v1/orders?customer_name=%FF"),
        ("GET", "/v1/orders?customer_name=ok&page_token=%C3%28"),
        ("POST", "/v1/orders/%FF:cancel"),
        ("GET", "/v1/orders/%FF:watch"),
        ("GET", "/v1/products/%FF"),
        ("GET", "/v1/products/%FF/stock"),
        ("POST", "/v1/products/%C0%AE/stock:adjust"),
        ("GET", "/v1/products?page_token=%FF"),
    ],
)
def test_invalid_utf8_in_a_path_or_query_answers_400(stack: Stack, method: str, target: str) -> None:
    body = b"{}" if method == "POST" else None
    assert_error(send(stack.gateway, method, target, body, stack.authorization()), 400, INVALID_ARGUMENT)


@pytest.mark.parametrize(
    "method, target",
    [
        ("GET", "/v1/no/such/route"),
        ("DELETE", "/v1/orders"),
        ("PUT", "/v1/products/1"),
        ("PATCH", f"/v1/orders/{ORDER_ID}"),
        ("GET", "/v1/orders:bulkCreate"),
        ("POST", "/fulfillment.orders.v1.OrderLifecycleService/AdvanceOrder"),
        ("POST", "/fulfillment.inventory.v1.ReservationService/ReserveStock"),
    ],
)
def test_unknown_routes_and_methods_answer_404(stack: Stack, method: str, target: str) -> None:
    assert_error(send(stack.gateway, method, target, b"{}", stack.authorization()), 404, NOT_FOUND)


@pytest.mark.parametrize(
    "target",
    [
        "/fulfillment.orders.v1.OrderService/GetOrder",
        "/fulfillment.inventory.v1.InventoryService/ListProducts",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ],
)
@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-www-form-urlencoded", "application/grpc-web"]
)
def test_plain_http_to_a_grpc_method_answers_415(stack: Stack, target: str, content_type: str) -> None:
    headers = {"content-type": content_type, **stack.authorization()}
    reply = send(stack.gateway, "POST", target, b"{}", headers)
    error = assert_error(reply, 415, INVALID_ARGUMENT)
    assert "gRPC" in error["message"]


def test_native_grpc_through_the_gateway_is_not_held_to_the_http_body_limit(stack: Stack) -> None:
    with grpc.insecure_channel(stack.gateway.removeprefix("http://")) as channel:
        orders = orders_service_pb2_grpc.OrderServiceStub(channel)
        admin = stack.bearer()
        with pytest.raises(grpc.RpcError) as bad_id:
            orders.GetOrder(
                orders_service_pb2.GetOrderRequest(order_id="nope"), timeout=10, metadata=admin
            )
        assert bad_id.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        oversized_name = orders_service_pb2.CreateOrderRequest(
            customer_name="x" * (UNARY_BODY_LIMIT + 1),
            items=[orders_service_pb2.CreateOrderItem(product_id=1, quantity=1)],
        )
        with pytest.raises(grpc.RpcError) as too_long:
            orders.CreateOrder(oversized_name, timeout=10, metadata=admin)
        assert too_long.value.code() == grpc.StatusCode.INVALID_ARGUMENT, too_long.value.details()


def test_upstream_errors_have_every_key_of_the_shape(stack: Stack) -> None:
    admin = stack.authorization()
    missing = assert_error(
        send(stack.gateway, "GET", f"/v1/orders/{uuid.uuid4()}", headers=admin), 404, NOT_FOUND
    )
    assert missing["details"] == []
    empty = json.dumps({"customer_name": "", "items": []}).encode()
    invalid = assert_error(
        send(stack.gateway, "POST", "/v1/orders", empty, admin), 400, INVALID_ARGUMENT
    )
    (bad_request,) = invalid["details"]
    assert bad_request["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert {v["field"] for v in bad_request["field_violations"]} == {"customer_name", "items"}


@pytest.mark.parametrize(
    "target, limit", [("/v1/orders", UNARY_BODY_LIMIT), ("/v1/orders:bulkCreate", BULK_BODY_LIMIT)]
)
def test_a_body_over_the_route_limit_answers_413_before_it_is_sent(
    stack: Stack, target: str, limit: int
) -> None:
    # Only the headers go out: the answer comes from Content-Length alone.
    headers = (
        f"POST {target} HTTP/1.1\r\nHost: gateway\r\ncontent-type: application/json\r\n"
        f"content-length: {limit + 1}\r\n"
    ).encode() + _authorization_line(stack) + b"\r\n"
    assert_error(exchange(stack.gateway, headers, timeout=10), 413, RESOURCE_EXHAUSTED)


def test_a_chunked_body_over_the_unary_limit_answers_413(stack: Stack) -> None:
    chunks = [b'{"customer_name": "', b"x" * (UNARY_BODY_LIMIT + 1), b'"}']
    reply = send(stack.gateway, "POST", "/v1/orders", iter(chunks), stack.authorization())
    assert_error(reply, 413, RESOURCE_EXHAUSTED)


def test_the_bulk_route_takes_a_body_over_the_unary_limit(stack: Stack) -> None:
    oversized = [{"customer_name": "x" * UNARY_BODY_LIMIT, "items": [{"product_id": 1, "quantity": 1}]}]
    body = json.dumps(oversized).encode()
    reply = send(stack.gateway, "POST", "/v1/orders:bulkCreate", body, stack.authorization())
    assert reply.status == 200, str(reply)
    (result,) = json.loads(reply.body)
    assert result["status"]["code"] == INVALID_ARGUMENT and "order" not in result


def _authorization_line(stack: Stack) -> bytes:
    """The admin's Authorization header as a raw request line: the refusals below come
    from how the request is framed, not from a missing token."""
    ((name, value),) = stack.authorization().items()
    return f"{name}: {value}\r\n".encode()


def test_oversized_headers_answer_431(stack: Stack) -> None:
    start = b"GET /v1/products HTTP/1.1\r\nHost: gateway\r\n" + _authorization_line(stack)
    big = start + b"x-big: " + b"a" * 40_000 + b"\r\n\r\n"
    assert_error(exchange(stack.gateway, big), 431, RESOURCE_EXHAUSTED)
    many = b"".join(b"x-header-%d: v\r\n" % i for i in range(120))
    too_many = start + many + b"\r\n"
    assert_error(exchange(stack.gateway, too_many), 431, RESOURCE_EXHAUSTED)


def test_http_1_0_answers_426(stack: Stack) -> None:
    raw = b"GET /v1/products HTTP/1.0\r\nHost: gateway\r\n" + _authorization_line(stack) + b"\r\n"
    assert_error(exchange(stack.gateway, raw), 426, INVALID_ARGUMENT)


def test_malformed_http_answers_400(stack: Stack) -> None:
    authorization = _authorization_line(stack)
    for raw in (
        b"GARBAGE\r\n\r\n",
        b"GET /v1/products HTTP/1.1\r\nHost: gateway\r\n" + authorization
        + b"content-length: abc\r\n\r\n",
        b"POST /v1/orders HTTP/1.1\r\nHost: gateway\r\n" + authorization
        + b"transfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
    ):
        assert_error(exchange(stack.gateway, raw), 400, INVALID_ARGUMENT)


def test_request_headers_not_sent_in_time_answer_408(stack: Stack) -> None:
    half_sent = b"GET /v1/products HTTP/1.1\r\nHost: gateway\r\n" + _authorization_line(stack)
    assert_error(exchange(stack.gateway, half_sent, timeout=20), 408, DEADLINE_EXCEEDED)


@pytest.mark.parametrize("method, path", [
    ("GET", "/ready"), ("GET", "/stats"), ("GET", "/server_info"), ("GET", "/config_dump"),
    ("GET", "/clusters"), ("POST", "/quitquitquit"), ("POST", "/healthcheck/fail"),
])
def test_the_admin_interface_is_not_reachable_through_the_gateway_port(
    stack: Stack, method: str, path: str
) -> None:
    # Not even for an admin's token: the admin interface has no route on the gateway.
    assert_error(send(stack.gateway, method, path, headers=stack.authorization()), 404, NOT_FOUND)
    # The paths are the admin's: its own port answers them.
    if method == "GET":
        assert send(stack.admin, method, path).status == 200


@pytest.fixture(scope="module")
def gateway_without_services(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`fulfillment gateway` alone, its two services' addresses unbound."""
    port = free_port()
    env = {
        **service_env,
        "GATEWAY_PORT": str(port),
        "GATEWAY_ADMIN_PORT": str(free_port()),
        "INVENTORY_ADDR": f"127.0.0.1:{free_port()}",
        "ORDERS_ADDR": f"127.0.0.1:{free_port()}",
    }
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("lone-gateway") / "gateway.log"
    process = Process(fulfillment_command("gateway"), env, log)
    try:
        answers = http_answers(f"{url}/")
        wait_until(
            lambda: answers() or process.popen.poll() is not None,
            timeout=30, what="the lone gateway to answer",
        )
        assert process.popen.poll() is None, process.output()[-3000:]
        yield url
    finally:
        process.stop(timeout=15)


@pytest.mark.parametrize(
    "method, target, body",
    [
        ("GET", "/v1/products/1", None),
        ("POST", "/v1/orders", b'{"customer_name": "A", "items": [{"product_id": 1, "quantity": 1}]}'),
        ("GET", f"/v1/orders/{ORDER_ID}:watch", None),
    ],
)
def test_unavailable_services_answer_503_code_14(
    gateway_without_services: str, settings: Settings, method: str, target: str, body: bytes | None
) -> None:
    reply = send(gateway_without_services, method, target, body, authorization_header(settings))
    error = assert_error(reply, 503, UNAVAILABLE)
    assert "upstream" not in error["message"]


def test_native_grpc_callers_get_unavailable_with_a_plain_message(
    gateway_without_services: str, settings: Settings
) -> None:
    with grpc.insecure_channel(gateway_without_services.removeprefix("http://")) as channel:
        orders = orders_service_pb2_grpc.OrderServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            orders.GetOrder(
                orders_service_pb2.GetOrderRequest(order_id=ORDER_ID), timeout=10,
                metadata=bearer(settings),
            )
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert not info.value.details().startswith("{"), info.value.details()
