"""Setting, adjusting and reading stock levels."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2

from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as pb
from services.inventory.domain.products import MAX_STOCK_LEVEL
from tests.inventory.calls import details_of, rpc_error, stock_of

pytestmark = pytest.mark.integration


def test_set_stock_is_absolute(inventory, make_product) -> None:
    product = make_product(stock=4)
    level = inventory.SetStock(pb.SetStockRequest(product_id=product.product_id, stock_level=11))
    assert (level.product_id, level.stock_level) == (product.product_id, 11)
    assert stock_of(inventory, product.product_id) == 11
    inventory.SetStock(pb.SetStockRequest(product_id=product.product_id, stock_level=0))
    assert stock_of(inventory, product.product_id) == 0


def test_adjust_stock_adds_a_signed_delta(inventory, make_product) -> None:
    product = make_product(stock=5)
    up = inventory.AdjustStock(pb.AdjustStockRequest(product_id=product.product_id, delta=3))
    down = inventory.AdjustStock(pb.AdjustStockRequest(product_id=product.product_id, delta=-8))
    assert (up.stock_level, down.stock_level) == (8, 0)
    assert stock_of(inventory, product.product_id) == 0


def test_adjust_below_zero_is_failed_precondition_and_changes_nothing(
    inventory, make_product
) -> None:
    product = make_product(stock=2)
    error = rpc_error(
        lambda: inventory.AdjustStock(pb.AdjustStockRequest(product_id=product.product_id, delta=-3))
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "would make it negative" in error.details()
    [failure] = details_of(error, error_details_pb2.PreconditionFailure)
    assert [(v.type, v.subject) for v in failure.violations] == [
        ("STOCK", f"products/{product.product_id}")
    ]
    assert stock_of(inventory, product.product_id) == 2


def test_adjust_above_the_maximum_is_failed_precondition(inventory, make_product) -> None:
    product = make_product(stock=MAX_STOCK_LEVEL - 1)
    error = rpc_error(
        lambda: inventory.AdjustStock(pb.AdjustStockRequest(product_id=product.product_id, delta=2))
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert stock_of(inventory, product.product_id) == MAX_STOCK_LEVEL - 1


def test_concurrent_decrements_never_take_stock_below_zero(inventory, make_product) -> None:
    product = make_product(stock=10)

    def take_one() -> grpc.StatusCode:
        try:
            inventory.AdjustStock(
                pb.AdjustStockRequest(product_id=product.product_id, delta=-1), timeout=30
            )
            return grpc.StatusCode.OK
        except grpc.RpcError as error:
            return error.code()

    with ThreadPoolExecutor(24) as pool:
        codes = list(pool.map(lambda _: take_one(), range(24)))
    assert codes.count(grpc.StatusCode.OK) == 10
    assert codes.count(grpc.StatusCode.FAILED_PRECONDITION) == 14
    assert stock_of(inventory, product.product_id) == 0
