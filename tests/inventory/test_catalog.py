"""Creating, reading, batch-reading and listing products through the real server."""

from __future__ import annotations

import threading
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2

from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as pb
from tests.inventory.calls import details_of, rpc_error
from tests.support import wait_until

pytestmark = pytest.mark.integration


def test_create_product_returns_it_with_id_formatted_price_and_time(inventory) -> None:
    sku = f"sku-{uuid.uuid4()}"
    created = inventory.CreateProduct(
        pb.CreateProductRequest(
            sku=sku, name="Desk lamp", description="Warm light", price="1200.9",
            initial_stock=7,
        )
    )
    assert created.product_id > 0
    assert (created.sku, created.name, created.description) == (sku, "Desk lamp", "Warm light")
    assert created.price == "1200.90"
    assert created.stock_level == 7
    assert created.create_time.seconds > 0
    assert inventory.GetProduct(pb.GetProductRequest(product_id=created.product_id)) == created


def test_create_product_without_initial_stock_starts_at_zero(inventory) -> None:
    created = inventory.CreateProduct(
        pb.CreateProductRequest(sku=f"sku-{uuid.uuid4()}", name="Pen", price="0")
    )
    assert (created.stock_level, created.price) == (0, "0.00")


def test_duplicate_sku_is_already_exists_and_keeps_the_first(inventory, make_product) -> None:
    first = make_product(stock=3, price="1.00")
    error = rpc_error(
        lambda: inventory.CreateProduct(
            pb.CreateProductRequest(sku=first.sku, name="Other", price="2.00", initial_stock=9)
        )
    )
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    assert first.sku in error.details()
    assert inventory.GetProduct(pb.GetProductRequest(product_id=first.product_id)) == first


@pytest.mark.parametrize(
    ("method", "request_for"),
    [
        ("GetProduct", lambda pid: pb.GetProductRequest(product_id=pid)),
        ("GetStock", lambda pid: pb.GetStockRequest(product_id=pid)),
        ("SetStock", lambda pid: pb.SetStockRequest(product_id=pid, stock_level=5)),
        ("AdjustStock", lambda pid: pb.AdjustStockRequest(product_id=pid, delta=1)),
        ("AdjustStock", lambda pid: pb.AdjustStockRequest(product_id=pid, delta=-1)),
    ],
)
def test_unknown_product_is_not_found(inventory, method, request_for) -> None:
    unknown = 2**63 - 1
    error = rpc_error(lambda: getattr(inventory, method)(request_for(unknown)))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == f"product {unknown} does not exist"


def test_batch_get_returns_products_in_request_order(inventory, make_product) -> None:
    a, b, c = make_product(), make_product(), make_product()
    response = inventory.BatchGetProducts(
        pb.BatchGetProductsRequest(product_ids=[c.product_id, a.product_id, b.product_id])
    )
    assert list(response.products) == [c, a, b]


def test_batch_get_with_unknown_ids_is_not_found_naming_them(inventory, make_product) -> None:
    known = make_product()
    unknown = [2**62 + 1, 2**62 + 2]
    error = rpc_error(
        lambda: inventory.BatchGetProducts(
            pb.BatchGetProductsRequest(product_ids=[unknown[1], known.product_id, unknown[0]])
        )
    )
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == f"products {unknown[0]}, {unknown[1]} do not exist"


def test_batch_get_refuses_duplicates_naming_the_repeat(inventory, make_product) -> None:
    product = make_product()
    error = rpc_error(
        lambda: inventory.BatchGetProducts(
            pb.BatchGetProductsRequest(product_ids=[product.product_id, product.product_id])
        )
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    [bad_request] = details_of(error, error_details_pb2.BadRequest)
    assert [v.field for v in bad_request.field_violations] == ["product_ids[1]"]


def _walk(inventory, page_size: int, after_each_page=lambda: None) -> list[pb.Product]:
    seen: list[pb.Product] = []
    token = ""
    for _ in range(10_000):
        page = inventory.ListProducts(pb.ListProductsRequest(page_size=page_size, page_token=token))
        assert len(page.products) <= page_size
        seen.extend(page.products)
        token = page.next_page_token
        if not token:
            return seen
        after_each_page()
    raise AssertionError("pagination never ended")


def test_list_products_pages_in_id_order_and_ends_with_empty_token(
    inventory, make_product
) -> None:
    created = [make_product().product_id for _ in range(5)]
    walked = [p.product_id for p in _walk(inventory, page_size=2)]
    assert walked == sorted(walked)
    assert set(created) <= set(walked)


def test_page_size_zero_means_default_and_large_is_clamped(inventory, make_product) -> None:
    make_product()
    default_page = inventory.ListProducts(pb.ListProductsRequest(page_size=0))
    huge_page = inventory.ListProducts(pb.ListProductsRequest(page_size=2**31 - 1))
    assert 1 <= len(default_page.products) <= 50
    assert 1 <= len(huge_page.products) <= 1000


def test_pagination_walks_every_product_once_while_others_insert(
    inventory, make_product
) -> None:
    existing = {make_product().product_id for _ in range(30)}
    inserted: list[int] = []
    failures: list[BaseException] = []
    inserters_per_thread = 10

    def insert_some() -> None:
        try:
            for _ in range(inserters_per_thread):
                inserted.append(make_product().product_id)
        except BaseException as exc:
            failures.append(exc)

    inserters = [threading.Thread(target=insert_some) for _ in range(3)]

    def let_an_insert_happen() -> None:
        count = len(inserted)
        wait_until(
            lambda: len(inserted) > count or not any(t.is_alive() for t in inserters),
            timeout=10, what="a concurrent insert",
        )

    for thread in inserters:
        thread.start()
    try:
        walked = [p.product_id for p in _walk(inventory, 7, after_each_page=let_an_insert_happen)]
    finally:
        for thread in inserters:
            thread.join(30)
    assert not failures
    assert len(walked) == len(set(walked)), "a product appeared on two pages"
    assert walked == sorted(walked)
    assert existing <= set(walked), "a product that existed before the walk was skipped"
    assert len(inserted) == 3 * inserters_per_thread
