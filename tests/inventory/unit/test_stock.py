"""Reading, setting and adjusting stock directly, on fakes."""

from __future__ import annotations

import asyncio

import pytest

from services.inventory.domain.errors import (
    ProductNotFound,
    StockLimitExceeded,
    StockWouldGoNegative,
)
from services.inventory.domain.products import MAX_STOCK_LEVEL, StockLevel
from services.inventory.service_layer.stock import adjust_stock, get_stock, set_stock
from tests.inventory.unit.fakes import FakeInventory

pytestmark = pytest.mark.unit


@pytest.fixture
def inventory() -> FakeInventory:
    return FakeInventory()


def adjust(inventory: FakeInventory, product_id: int, delta: int) -> StockLevel:
    return asyncio.run(adjust_stock(product_id, delta, inventory.deps))


def test_get_stock_reads_the_level(inventory):
    product_id = inventory.add_product(stock=4)
    assert asyncio.run(get_stock(product_id, inventory.deps)) == StockLevel(product_id, 4)


def test_set_stock_replaces_the_level(inventory):
    product_id = inventory.add_product(stock=4)
    assert asyncio.run(set_stock(product_id, 11, inventory.deps)) == StockLevel(product_id, 11)
    assert inventory.stock_of(product_id) == 11


def test_adjust_stock_adds_a_signed_delta(inventory):
    product_id = inventory.add_product(stock=10)
    assert adjust(inventory, product_id, -3) == StockLevel(product_id, 7)
    assert adjust(inventory, product_id, 5) == StockLevel(product_id, 12)
    assert adjust(inventory, product_id, -12) == StockLevel(product_id, 0)


def test_an_adjustment_below_zero_is_refused_and_changes_nothing(inventory):
    product_id = inventory.add_product(stock=2)
    with pytest.raises(StockWouldGoNegative) as caught:
        adjust(inventory, product_id, -3)
    assert caught.value.message == (
        f"stock of product {product_id} is 2; adjusting it by -3 would make it negative, "
        "so nothing was changed"
    )
    [violation] = caught.value.violations
    assert (violation.subject, violation.description) == (
        f"products/{product_id}", "stock 2, delta -3"
    )
    assert inventory.stock_of(product_id) == 2


def test_an_adjustment_above_the_maximum_is_refused_and_changes_nothing(inventory):
    product_id = inventory.add_product(stock=MAX_STOCK_LEVEL - 1)
    with pytest.raises(StockLimitExceeded, match=f"maximum of {MAX_STOCK_LEVEL}"):
        adjust(inventory, product_id, 2)
    assert inventory.stock_of(product_id) == MAX_STOCK_LEVEL - 1


def test_a_level_above_the_maximum_can_still_be_lowered(inventory):
    product_id = inventory.add_product(stock=MAX_STOCK_LEVEL + 5)
    assert adjust(inventory, product_id, -1).stock_level == MAX_STOCK_LEVEL + 4


@pytest.mark.parametrize(
    "call",
    [
        lambda deps: get_stock(404, deps),
        lambda deps: set_stock(404, 1, deps),
        lambda deps: adjust_stock(404, 1, deps),
        lambda deps: adjust_stock(404, -1, deps),
    ],
    ids=["get", "set", "adjust up", "adjust down"],
)
def test_stock_of_an_unknown_product_is_not_found(inventory, call):
    with pytest.raises(ProductNotFound, match="product 404 does not exist"):
        asyncio.run(call(inventory.deps))
    assert inventory.db.products == {}
