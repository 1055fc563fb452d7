"""Replies of the live gateway (a real `fulfillment up`) against what
gateway/static/openapi.json documents for them: every success reply of the contract's
routes, SummarizeOrders included, and each documented error status produced for real
(400, 401, 403, 404, 409, 413, 429)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from services.common.auth.principal import Role
from services.common.lifecycle.status import OrderStatus
from tests.e2e.conftest import Stack
from tests.e2e.gateway_replies import send
from tests.e2e.openapi_conformance import assert_conforms
from tests.support import wait_until

pytestmark = pytest.mark.e2e

TERMINAL = {"DELIVERED", "FAILED", "CANCELED"}
STATUS_NAMES = sorted(status.value for status in OrderStatus)


def call(
    stack: Stack, method: str, template: str, path: str | None = None, body: Any = None,
    role: Role = Role.ADMIN, expect: int = 200,
) -> Any:
    """`method path` through the gateway, checked against the documentation of `template`."""
    status, reply = stack.http(method, path or template, body, role=role)
    assert status == expect, (method, path or template, status, reply)
    assert_conforms(method, template, status, reply)
    return reply


def new_product(stack: Stack, stock: int = 100) -> dict[str, Any]:
    return call(
        stack, "POST", "/v1/products",
        body={"sku": f"oa-{uuid.uuid4().hex[:10]}", "name": "Documented", "description": "d",
              "price": "3.25", "initial_stock": stock},
    )


def test_product_stock_and_catalogue_replies_match_their_schemas(stack: Stack) -> None:
    product = new_product(stack)
    pid = product["product_id"]
    assert isinstance(pid, str), "int64 ids are JSON strings"
    call(stack, "GET", "/v1/products/{product_id}", f"/v1/products/{pid}")
    call(stack, "GET", "/v1/products", "/v1/products?page_size=2")
    call(stack, "GET", "/v1/products:batchGet", f"/v1/products:batchGet?product_ids={pid}")
    call(stack, "POST", "/v1/products/{product_id}/stock", f"/v1/products/{pid}/stock",
         {"stock_level": 5})
    adjusted = call(stack, "POST", "/v1/products/{product_id}/stock:adjust",
                    f"/v1/products/{pid}/stock:adjust", {"delta": "-5"})
    assert "stock_level" not in adjusted, "a field at its default (0) is left out"
    call(stack, "GET", "/v1/products/{product_id}/stock", f"/v1/products/{pid}/stock")


def test_order_replies_match_their_schemas_from_creation_to_delivery(stack: Stack) -> None:
    pid = new_product(stack)["product_id"]
    customer = f"oa-{uuid.uuid4().hex[:8]}"
    order = call(stack, "POST", "/v1/orders",
                 body={"customer_name": customer, "items": [{"product_id": pid, "quantity": 2}]})
    oid = order["order_id"]
    watched = call(stack, "GET", "/v1/orders/{order_id}:watch", f"/v1/orders/{oid}:watch")
    assert watched[-1]["status"] in TERMINAL and watched[0]["order_id"] == oid
    call(stack, "GET", "/v1/orders/{order_id}", f"/v1/orders/{oid}")
    history = call(stack, "GET", "/v1/orders/{order_id}/history", f"/v1/orders/{oid}/history")
    assert history["entries"][0]["to_status"] == "PENDING"
    listed = call(stack, "GET", "/v1/orders",
                  f"/v1/orders?customer_name={customer}&status={watched[-1]['status']}&page_size=1")
    assert [o["order_id"] for o in listed["orders"]] == [oid]


def test_cancel_and_bulk_replies_match_their_schemas(stack: Stack) -> None:
    pid = new_product(stack, stock=1)["product_id"]
    good = {"customer_name": "oa-bulk", "items": [{"product_id": pid, "quantity": 1}]}
    results = call(stack, "POST", "/v1/orders:bulkCreate", body=[good, {"customer_name": ""}, good])
    assert [r.get("index", 0) for r in results] == [0, 1, 2]
    assert results[1]["status"]["code"] == 3 and results[1]["status"]["details"]
    # The worker may move the order past cancelling first: either reply is documented.
    oid = results[2]["order"]["order_id"]
    status, reply = stack.http("POST", f"/v1/orders/{oid}:cancel", {"reason": "documented"})
    assert_conforms("POST", "/v1/orders/{order_id}:cancel", status, reply)
    assert (status, reply.get("status") if status == 200 else reply["code"]) in {(200, "CANCELED"), (400, 9)}


def test_summarize_counts_every_status_and_follows_new_orders(stack: Stack) -> None:
    before = call(stack, "GET", "/v1/orders:summarize")["counts"]
    assert sorted(before) == STATUS_NAMES
    assert all(isinstance(count, str) and count.isdigit() for count in before.values())
    pid = new_product(stack)["product_id"]
    request = {"customer_name": f"oa-sum-{uuid.uuid4().hex[:8]}",
               "items": [{"product_id": pid, "quantity": 1}]}
    results = call(stack, "POST", "/v1/orders:bulkCreate", body=[request] * 5)
    created = [result["order"]["order_id"] for result in results]

    def all_delivered() -> bool:
        return all(stack.http("GET", f"/v1/orders/{oid}")[1]["status"] == "DELIVERED" for oid in created)

    wait_until(all_delivered, timeout=60, interval=0.1, what="five orders to be delivered")
    after = call(stack, "GET", "/v1/orders:summarize")["counts"]
    assert sum(map(int, after.values())) - sum(map(int, before.values())) == 5
    assert int(after["DELIVERED"]) - int(before["DELIVERED"]) >= 5


def test_summarize_is_for_admins_only(stack: Stack) -> None:
    for role in (Role.CUSTOMER, Role.SERVICE):
        error = call(stack, "GET", "/v1/orders:summarize", role=role, expect=403)
        assert error["code"] == 7


def error_reply(
    stack: Stack, method: str, template: str, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None, expect: int = 400,
) -> dict[str, Any]:
    """A raw request whose error reply must be the documented one for `expect`."""
    reply = send(stack.gateway, method, path, body, headers if headers is not None else stack.authorization())
    assert reply.status == expect, str(reply)
    error = json.loads(reply.body)
    assert_conforms(method, template, reply.status, error)
    return error


def test_400_from_the_gateway_and_from_the_services(stack: Stack) -> None:
    pid = new_product(stack, stock=1)["product_id"]
    error_reply(stack, "POST", "/v1/products", "/v1/products", b'{"sku":')
    error_reply(stack, "GET", "/v1/products/{product_id}", "/v1/products/not-a-number")
    error_reply(stack, "GET", "/v1/orders", "/v1/orders?status=NOPE")
    invalid = error_reply(stack, "POST", "/v1/orders", "/v1/orders", b'{"customer_name":"","items":[]}')
    assert invalid["code"] == 3 and invalid["details"][0]["@type"].endswith("google.rpc.BadRequest")
    precondition = error_reply(stack, "POST", "/v1/products/{product_id}/stock:adjust",
                               f"/v1/products/{pid}/stock:adjust", b'{"delta": -2}')
    assert precondition["code"] == 9


def test_401_without_a_token_or_with_a_bad_one(stack: Stack) -> None:
    for headers in ({}, {"authorization": "Bearer not-a-jwt"}):
        error = error_reply(stack, "GET", "/v1/orders:summarize", "/v1/orders:summarize",
                            headers=headers, expect=401)
        assert error["code"] == 16


def test_403_for_a_role_the_call_does_not_allow(stack: Stack) -> None:
    headers = stack.authorization(Role.CUSTOMER)
    error = error_reply(stack, "POST", "/v1/products", "/v1/products",
                        b'{"sku":"x","name":"x","price":"1"}', headers=headers, expect=403)
    assert error["code"] == 7


def test_404_for_what_does_not_exist(stack: Stack) -> None:
    error_reply(stack, "GET", "/v1/products/{product_id}", "/v1/products/987654321987", expect=404)
    error_reply(stack, "GET", "/v1/orders/{order_id}/history", f"/v1/orders/{uuid.uuid4()}/history",
                expect=404)
    error_reply(stack, "GET", "/v1/orders/{order_id}:watch", f"/v1/orders/{uuid.uuid4()}:watch",
                expect=404)
    error_reply(stack, "POST", "/v1/orders", "/v1/orders",
                b'{"customer_name":"oa","items":[{"product_id":"987654321987","quantity":1}]}',
                expect=404)


def test_409_for_a_duplicate_sku(stack: Stack) -> None:
    sku = f"oa-dup-{uuid.uuid4().hex[:8]}"
    body = f'{{"sku":"{sku}","name":"x","price":"1"}}'.encode()
    status, _ = stack.http("POST", "/v1/products", {"sku": sku, "name": "x", "price": "1"})
    assert status == 200
    error = error_reply(stack, "POST", "/v1/products", "/v1/products", body, expect=409)
    assert error["code"] == 6


def test_413_for_a_body_over_the_limit(stack: Stack) -> None:
    big = b'{"customer_name":"' + b"x" * (1024 * 1024 + 10) + b'"}'
    error = error_reply(stack, "POST", "/v1/orders", "/v1/orders", big, expect=413)
    assert error["code"] == 8


def test_429_for_request_headers_the_service_will_not_take(stack: Stack) -> None:
    """Envoy admits request headers up to 32 KiB; the services' gRPC server refuses
    metadata over 16 KiB with RESOURCE_EXHAUSTED, which the gateway answers 429."""
    headers = {**stack.authorization(), "x-padding": "p" * 20_000}
    error = error_reply(stack, "GET", "/v1/orders:summarize", "/v1/orders:summarize",
                        headers=headers, expect=429)
    assert error["code"] == 8
