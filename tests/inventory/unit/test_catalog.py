"""Creating, finding and listing products, on fakes."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from services.common.errors import InvalidArgument, Reason
from services.inventory.domain.errors import DuplicateSku, ProductNotFound
from services.inventory.domain.products import NewProduct
from services.inventory.service_layer.catalog import (
    batch_get_products,
    create_product,
    get_product,
    list_products,
)
from tests.inventory.unit.fakes import FakeInventory

pytestmark = pytest.mark.unit


@pytest.fixture
def inventory() -> FakeInventory:
    return FakeInventory()


def create(inventory: FakeInventory, sku: str, stock: int = 0):
    new = NewProduct(sku, "Widget", "blue", Decimal("12.50"), stock)
    return asyncio.run(create_product(new, inventory.deps))


def test_a_created_product_is_stored_with_its_initial_stock(inventory):
    product = create(inventory, "SKU-1", stock=7)
    assert (product.sku, product.price, product.stock_level) == ("SKU-1", Decimal("12.50"), 7)
    assert asyncio.run(get_product(product.product_id, inventory.deps)) == product


def test_a_taken_sku_is_refused_and_nothing_is_written(inventory):
    first = create(inventory, "SKU-1")
    with pytest.raises(DuplicateSku, match="'SKU-1'"):
        create(inventory, "SKU-1", stock=99)
    assert list(inventory.db.products) == [first.product_id]


def test_an_unknown_product_is_not_found_with_its_id_as_a_reason(inventory):
    with pytest.raises(ProductNotFound) as caught:
        asyncio.run(get_product(404, inventory.deps))
    assert caught.value.message == "product 404 does not exist"
    assert [(i.reason, dict(i.metadata)) for i in caught.value.infos] == [
        (Reason.PRODUCT_NOT_FOUND, {"product_id": "404"})
    ]


def test_a_batch_comes_back_in_the_order_asked(inventory):
    a, b, c = (inventory.add_product() for _ in range(3))
    found = asyncio.run(batch_get_products([c, a, b], inventory.deps))
    assert [p.product_id for p in found] == [c, a, b]


def test_a_batch_with_unknown_ids_names_every_one_and_returns_nothing(inventory):
    known = inventory.add_product()
    with pytest.raises(ProductNotFound) as caught:
        asyncio.run(batch_get_products([901, known, 900], inventory.deps))
    assert caught.value.product_ids == [900, 901]
    assert [i.metadata["product_id"] for i in caught.value.infos] == ["900", "901"]


def list_all(inventory: FakeInventory, page_size: int) -> list[list[int]]:
    pages, token = [], ""
    for _ in range(100):
        page = asyncio.run(list_products(page_size, token, inventory.deps))
        pages.append([p.product_id for p in page.products])
        token = page.next_page_token
        if not token:
            return pages
    raise AssertionError("listing never ended")


def test_listing_pages_through_every_product_in_id_order_once(inventory):
    ids = [inventory.add_product() for _ in range(5)]
    assert list_all(inventory, page_size=2) == [ids[0:2], ids[2:4], ids[4:5]]


def test_a_page_that_ends_the_list_exactly_has_no_next_token(inventory):
    ids = [inventory.add_product() for _ in range(4)]
    assert list_all(inventory, page_size=2) == [ids[0:2], ids[2:4]]


def test_a_product_created_while_paging_is_on_a_later_page(inventory):
    first, second = inventory.add_product(), inventory.add_product()
    page = asyncio.run(list_products(1, "", inventory.deps))
    created = inventory.add_product()
    rest = asyncio.run(list_products(10, page.next_page_token, inventory.deps))
    assert [p.product_id for p in page.products] == [first]
    assert [p.product_id for p in rest.products] == [second, created]


def test_a_page_token_that_was_not_issued_is_refused(inventory):
    with pytest.raises(InvalidArgument, match="page_token"):
        asyncio.run(list_products(10, "made-up", inventory.deps))


def test_a_negative_page_size_is_refused(inventory):
    with pytest.raises(InvalidArgument, match="page_size"):
        asyncio.run(list_products(-1, "", inventory.deps))


def test_reads_run_without_a_transaction(inventory):
    product_id = inventory.add_product()
    asyncio.run(get_product(product_id, inventory.deps))
    asyncio.run(batch_get_products([product_id], inventory.deps))
    asyncio.run(list_products(0, "", inventory.deps))
    assert inventory.uow.transactions == []
    assert len(inventory.uow.autocommits) == 3
