"""Bad input is INVALID_ARGUMENT naming the field; no input at all yields INTERNAL."""

from __future__ import annotations

import base64
import json
import uuid

import grpc
import psycopg2
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2

from services.common.pagination import PageTokens
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as pb
from services.common.proto.fulfillment.inventory.v1 import reservation_service_pb2 as rpb
from services.inventory.service_layer.catalog import PRODUCTS_PAGE_TOKEN_KIND
from tests.auth_helpers import bearer_for
from tests.inventory.calls import details_of, new_order_id, reserve_request, rpc_error
from tests.raw_grpc import LEAKED_INTERNALS, call_raw, invalid_utf8_request, rpc_methods

pytestmark = pytest.mark.integration

MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)


def _sku() -> str:
    return f"sku-{uuid.uuid4()}"


def _inventory(method: str, request):
    return "inventory", method, request


def _reservations(method: str, request):
    return "reservations", method, request


def _create(**fields):
    values = {"sku": _sku(), "name": "Widget", "price": "1.00", **fields}
    return _inventory("CreateProduct", pb.CreateProductRequest(**values))


def _reserve(items: dict[int, int], order_id: str | None = None):
    request = reserve_request(new_order_id() if order_id is None else order_id, items)
    return _reservations("ReserveStock", request)


def _token(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


def _duplicate_product(pid: int):
    items = [rpb.ReservationItem(product_id=pid, quantity=q) for q in (1, 2)]
    return _reservations(
        "ReserveStock", rpb.ReserveStockRequest(order_id=new_order_id(), items=items)
    )


FORGED_TOKEN = _token({"k": "products", "v": ["x"], "f": "?"})
# The server's own layout and a valid key, but unsigned: what a client could make up.
UNSIGNED_TOKEN = _token({"k": "products", "v": [1], "f": ""})
FOREIGN_TOKEN = PageTokens(b"another deployment's secret").encode(PRODUCTS_PAGE_TOKEN_KIND, [1])

# (case id, build(product_id) -> (stub, method, request), field named in BadRequest)
BAD_INPUTS = [
    ("empty sku", lambda _: _create(sku=""), "sku"),
    ("blank sku", lambda _: _create(sku="   "), "sku"),
    ("over-long sku", lambda _: _create(sku="s" * 101), "sku"),
    ("sku with NUL", lambda _: _create(sku="a\x00b"), "sku"),
    ("empty name", lambda _: _create(name=""), "name"),
    ("over-long name", lambda _: _create(name="n" * 201), "name"),
    ("over-long description", lambda _: _create(description="d" * 5001), "description"),
    ("missing price", lambda _: _create(price=""), "price"),
    ("negative price", lambda _: _create(price="-1.00"), "price"),
    ("non-numeric price", lambda _: _create(price="cheap"), "price"),
    ("exponent price", lambda _: _create(price="1e5"), "price"),
    ("over-precise price", lambda _: _create(price="1.001"), "price"),
    ("absurd price", lambda _: _create(price="123456789012345678901234567890"), "price"),
    ("negative initial_stock", lambda _: _create(initial_stock=-1), "initial_stock"),
    ("absurd initial_stock", lambda _: _create(initial_stock=MAX_INT64), "initial_stock"),
    ("zero product_id", lambda _: _inventory("GetProduct", pb.GetProductRequest()), "product_id"),
    (
        "negative product_id",
        lambda _: _inventory("GetStock", pb.GetStockRequest(product_id=-5)),
        "product_id",
    ),
    (
        "negative stock_level",
        lambda pid: _inventory("SetStock", pb.SetStockRequest(product_id=pid, stock_level=-1)),
        "stock_level",
    ),
    (
        "absurd stock_level",
        lambda pid: _inventory(
            "SetStock", pb.SetStockRequest(product_id=pid, stock_level=MAX_INT64)
        ),
        "stock_level",
    ),
    (
        "absurd delta",
        lambda pid: _inventory(
            "AdjustStock", pb.AdjustStockRequest(product_id=pid, delta=MIN_INT64)
        ),
        "delta",
    ),
    (
        "negative page_size",
        lambda _: _inventory("ListProducts", pb.ListProductsRequest(page_size=-1)),
        "page_size",
    ),
    (
        "garbage page_token",
        lambda _: _inventory("ListProducts", pb.ListProductsRequest(page_token="%%garbage")),
        "page_token",
    ),
    (
        "forged page_token",
        lambda _: _inventory("ListProducts", pb.ListProductsRequest(page_token=FORGED_TOKEN)),
        "page_token",
    ),
    (
        "unsigned page_token",
        lambda _: _inventory("ListProducts", pb.ListProductsRequest(page_token=UNSIGNED_TOKEN)),
        "page_token",
    ),
    (
        "page_token of another deployment",
        lambda _: _inventory("ListProducts", pb.ListProductsRequest(page_token=FOREIGN_TOKEN)),
        "page_token",
    ),
    (
        "empty batch",
        lambda _: _inventory("BatchGetProducts", pb.BatchGetProductsRequest()),
        "product_ids",
    ),
    (
        "too many in batch",
        lambda _: _inventory(
            "BatchGetProducts", pb.BatchGetProductsRequest(product_ids=range(1, 1002))
        ),
        "product_ids",
    ),
    ("empty order_id", lambda pid: _reserve({pid: 1}, order_id=""), "order_id"),
    ("over-long order_id", lambda pid: _reserve({pid: 1}, order_id="o" * 129), "order_id"),
    ("no items", lambda _: _reserve({}), "items"),
    ("zero quantity", lambda pid: _reserve({pid: 0}), "items[0].quantity"),
    ("negative quantity", lambda pid: _reserve({pid: -2}), "items[0].quantity"),
    ("zero product in items", lambda _: _reserve({0: 1}), "items[0].product_id"),
    ("duplicate product in one reservation", _duplicate_product, "items[1].product_id"),
    ("too many items", lambda _: _reserve({pid: 1 for pid in range(1, 1002)}), "items"),
    (
        "empty order_id on release",
        lambda _: _reservations("ReleaseStock", rpb.ReleaseStockRequest()),
        "order_id",
    ),
]


@pytest.fixture(scope="module")
def product_id(inventory) -> int:
    request = pb.CreateProductRequest(sku=_sku(), name="Target", price="1.00", initial_stock=5)
    return inventory.CreateProduct(request).product_id


@pytest.mark.parametrize(
    ("build", "field"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_invalid_argument_naming_the_field(
    inventory, reservations, product_id, build, field
) -> None:
    stub_name, method, request = build(product_id)
    stub = {"inventory": inventory, "reservations": reservations}[stub_name]
    error = rpc_error(lambda: getattr(stub, method)(request, timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert field in error.details()
    [bad_request] = details_of(error, error_details_pb2.BadRequest)
    assert field in [v.field for v in bad_request.field_violations]


def test_bad_input_changes_nothing(inventory, reservations, product_id) -> None:
    before = inventory.GetProduct(pb.GetProductRequest(product_id=product_id))
    rpc_error(lambda: inventory.SetStock(pb.SetStockRequest(product_id=product_id, stock_level=-1)))
    rpc_error(lambda: reservations.ReserveStock(reserve_request(new_order_id(), {product_id: 0})))
    assert inventory.GetProduct(pb.GetProductRequest(product_id=product_id)) == before


# Odd but well-formed input: each must get a deliberate answer, never INTERNAL.
EDGE_INPUTS = [
    (
        "largest product_id",
        lambda _: _inventory("GetProduct", pb.GetProductRequest(product_id=MAX_INT64)),
    ),
    (
        "largest page_size",
        lambda _: _inventory("ListProducts", pb.ListProductsRequest(page_size=2**31 - 1)),
    ),
    ("unicode sku and name", lambda _: _create(sku=f"ÜNÏ-☃-{uuid.uuid4()}", name="雪だるま")),
    ("max price", lambda _: _create(price="9999999999.99")),
    ("unknown product in reservation", lambda _: _reserve({MAX_INT64: 1})),
    ("huge quantity", lambda pid: _reserve({pid: 10**12})),
    ("unicode order_id", lambda pid: _reserve({pid: 1}, order_id=f"☃-{uuid.uuid4()}")),
    (
        "release of unknown order",
        lambda _: _reservations("ReleaseStock", rpb.ReleaseStockRequest(order_id="never-seen")),
    ),
    (
        "delta at the bound",
        lambda pid: _inventory(
            "AdjustStock", pb.AdjustStockRequest(product_id=pid, delta=-(10**12))
        ),
    ),
]


@pytest.mark.parametrize(
    "build", [case[1] for case in EDGE_INPUTS], ids=[case[0] for case in EDGE_INPUTS]
)
def test_edge_input_never_yields_internal(inventory, reservations, product_id, build) -> None:
    stub_name, method, request = build(product_id)
    stub = {"inventory": inventory, "reservations": reservations}[stub_name]
    try:
        getattr(stub, method)(request, timeout=10)
    except grpc.RpcError as error:
        assert error.code() in {
            grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.INVALID_ARGUMENT,
        }, (error.code(), error.details())


@pytest.fixture(scope="module")
def page_tokens(database_url: str) -> PageTokens:
    """Signs as the server does: no client can, a test can read the stored secret."""
    connection = psycopg2.connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT secret FROM inventory.page_token_secret")
            [(secret,)] = cursor.fetchall()
    finally:
        connection.close()
    return PageTokens(bytes(secret))


# Keys no server ever signs; 2**63 once reached PostgreSQL and answered INTERNAL.
SIGNED_BAD_KEYS = {
    "id beyond int64": [2**63],
    "id far beyond int64": [2**80],
    "id zero": [0],
    "negative id": [-1],
    "id a string": ["5"],
    "id a float": [5.0],
    "id a bool": [True],
    "id null": [None],
    "no id": [],
    "two ids": [1, 2],
}


@pytest.mark.parametrize("key", list(SIGNED_BAD_KEYS.values()), ids=list(SIGNED_BAD_KEYS))
def test_a_signed_page_token_with_a_bad_key_is_invalid_argument(inventory, page_tokens, key):
    token = page_tokens.encode(PRODUCTS_PAGE_TOKEN_KIND, key)
    error = rpc_error(lambda: inventory.ListProducts(pb.ListProductsRequest(page_token=token)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "page_token" in error.details()


def test_a_signed_page_token_at_the_largest_id_is_an_empty_last_page(inventory, page_tokens):
    token = page_tokens.encode(PRODUCTS_PAGE_TOKEN_KIND, [MAX_INT64])
    page = inventory.ListProducts(pb.ListProductsRequest(page_token=token), timeout=10)
    assert list(page.products) == [] and page.next_page_token == ""


INVENTORY_RPCS = rpc_methods(
    pb.DESCRIPTOR.services_by_name["InventoryService"],
    rpb.DESCRIPTOR.services_by_name["ReservationService"],
)
UTF8_RPCS = [m for m in INVENTORY_RPCS if invalid_utf8_request(m.input_type) is not None]


@pytest.mark.parametrize("method", INVENTORY_RPCS, ids=[m.name for m in INVENTORY_RPCS])
@pytest.mark.parametrize("body", [b"\x00", b"\x0a\x05ab", b"\xff" * 12], ids=["nul", "truncated", "ff"])
def test_a_corrupt_request_body_is_invalid_argument_in_plain_words(
    inventory_channel, settings, method, body
) -> None:
    result = call_raw(inventory_channel, method, [body], metadata=bearer_for(settings, method))
    assert result.code is grpc.StatusCode.INVALID_ARGUMENT, (result.code, result.details)
    assert "not a valid" in result.details and method.input_type.full_name in result.details
    assert not LEAKED_INTERNALS.search(result.details), result.details
    assert result.bad_request() is not None


@pytest.mark.parametrize("method", UTF8_RPCS, ids=[m.name for m in UTF8_RPCS])
def test_invalid_utf8_in_a_string_field_is_invalid_argument(
    inventory_channel, settings, method
) -> None:
    result = call_raw(
        inventory_channel, method, [invalid_utf8_request(method.input_type)],
        metadata=bearer_for(settings, method),
    )
    assert result.code is grpc.StatusCode.INVALID_ARGUMENT, (result.code, result.details)
    assert "UTF-8" in result.details
    assert not LEAKED_INTERNALS.search(result.details), result.details


def test_a_corrupt_health_check_is_invalid_argument(inventory_channel) -> None:
    check = health_pb2.DESCRIPTOR.services_by_name["Health"].methods_by_name["Check"]
    result = call_raw(inventory_channel, check, [b"\x00"])
    assert result.code is grpc.StatusCode.INVALID_ARGUMENT, (result.code, result.details)
