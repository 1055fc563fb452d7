"""Errors carry structured reasons (google.rpc.ErrorInfo) that other services read with
error_infos(), so no client parses ids or numbers out of a message."""

from __future__ import annotations

import grpc
import pytest

from services.common.error_infos import error_infos
from services.common.errors import Reason
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as pb
from services.common.proto.fulfillment.inventory.v1 import reservation_service_pb2 as rpb
from services.inventory.domain.errors import MAX_PRODUCTS_NAMED_IN_REASONS
from services.inventory.service_layer.ports import MAX_LINES_IN_ONE_STATEMENT
from tests.inventory.calls import new_order_id, reserve_request, rpc_error

pytestmark = pytest.mark.integration

UNKNOWN = 2**62 + 101


def test_a_shortfall_names_each_short_product_with_requested_and_available(
    reservations, make_product
) -> None:
    plenty, short, empty = make_product(stock=9), make_product(stock=2), make_product(stock=0)
    request = reserve_request(
        new_order_id(), {empty.product_id: 1, plenty.product_id: 1, short.product_id: 5}
    )
    error = rpc_error(lambda: reservations.ReserveStock(request, timeout=10))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_infos(error, Reason.INSUFFICIENT_STOCK) == [
        {"product_id": str(short.product_id), "requested": "5", "available": "2"},
        {"product_id": str(empty.product_id), "requested": "1", "available": "0"},
    ]
    assert error_infos(error, Reason.PRODUCT_NOT_FOUND) == []


def test_a_shortfall_in_a_large_order_names_its_product_too(reservations, make_product) -> None:
    products = [make_product(stock=1) for _ in range(MAX_LINES_IN_ONE_STATEMENT + 1)]
    items = {p.product_id: 1 for p in products} | {products[0].product_id: 3}
    error = rpc_error(
        lambda: reservations.ReserveStock(reserve_request(new_order_id(), items), timeout=10)
    )
    assert error_infos(error, Reason.INSUFFICIENT_STOCK) == [
        {"product_id": str(products[0].product_id), "requested": "3", "available": "1"}
    ]


def test_a_repeated_refusal_carries_the_same_reasons(reservations, make_product) -> None:
    product = make_product(stock=1)
    request = reserve_request(new_order_id(), {product.product_id: 2})
    first = rpc_error(lambda: reservations.ReserveStock(request, timeout=10))
    again = rpc_error(lambda: reservations.ReserveStock(request, timeout=10))
    assert error_infos(again, Reason.INSUFFICIENT_STOCK) == error_infos(
        first, Reason.INSUFFICIENT_STOCK
    ) == [{"product_id": str(product.product_id), "requested": "2", "available": "1"}]


def test_a_reservation_naming_unknown_products_names_each_one(reservations, make_product) -> None:
    known = make_product(stock=5)
    request = reserve_request(
        new_order_id(), {UNKNOWN + 1: 1, known.product_id: 1, UNKNOWN: 1}
    )
    error = rpc_error(lambda: reservations.ReserveStock(request, timeout=10))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error_infos(error, Reason.PRODUCT_NOT_FOUND) == [
        {"product_id": str(UNKNOWN)}, {"product_id": str(UNKNOWN + 1)}
    ]


def test_a_reservation_after_its_release_names_the_order(reservations, make_product) -> None:
    product = make_product(stock=3)
    order_id = new_order_id()
    reservations.ReleaseStock(rpb.ReleaseStockRequest(order_id=order_id), timeout=10)
    error = rpc_error(
        lambda: reservations.ReserveStock(
            reserve_request(order_id, {product.product_id: 1}), timeout=10
        )
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_infos(error, Reason.RESERVATION_RELEASED) == [{"order_id": order_id}]
    assert error_infos(error, Reason.INSUFFICIENT_STOCK) == []


def test_batch_get_names_each_unknown_product(inventory, make_product) -> None:
    known = make_product()
    request = pb.BatchGetProductsRequest(product_ids=[UNKNOWN + 2, known.product_id, UNKNOWN])
    error = rpc_error(lambda: inventory.BatchGetProducts(request, timeout=10))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error_infos(error, Reason.PRODUCT_NOT_FOUND) == [
        {"product_id": str(UNKNOWN)}, {"product_id": str(UNKNOWN + 2)}
    ]


def test_a_single_unknown_product_is_named_by_get_product_and_get_stock(inventory) -> None:
    for call in (
        lambda: inventory.GetProduct(pb.GetProductRequest(product_id=UNKNOWN), timeout=10),
        lambda: inventory.GetStock(pb.GetStockRequest(product_id=UNKNOWN), timeout=10),
    ):
        error = rpc_error(call)
        assert error.code() is grpc.StatusCode.NOT_FOUND
        assert error_infos(error, Reason.PRODUCT_NOT_FOUND) == [{"product_id": str(UNKNOWN)}]


def test_as_many_unknown_products_as_an_order_holds_always_answer_not_found(inventory) -> None:
    # 1,000 ids of 19 digits (as many as one BatchGetProducts takes): the message and the
    # reasons stay within what a gRPC client accepts in trailers.
    ids = [UNKNOWN + i for i in range(1000)]
    request = pb.BatchGetProductsRequest(product_ids=list(reversed(ids)))
    for _ in range(10):
        error = rpc_error(lambda: inventory.BatchGetProducts(request, timeout=10))
        assert error.code() is grpc.StatusCode.NOT_FOUND, error.details()
        named = [int(info["product_id"]) for info in error_infos(error, Reason.PRODUCT_NOT_FOUND)]
        assert named == ids[:MAX_PRODUCTS_NAMED_IN_REASONS]
        assert str(ids[0]) in error.details()
