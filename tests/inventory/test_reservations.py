"""ReserveStock and ReleaseStock: all or nothing, once per order, released once."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as pb
from services.common.proto.fulfillment.inventory.v1 import reservation_service_pb2 as rpb
from tests.inventory.calls import details_of, new_order_id, reserve_request, rpc_error, stock_of

pytestmark = pytest.mark.integration


def _items(message_items) -> list[tuple[int, int]]:
    return [(item.product_id, item.quantity) for item in message_items]


def _release(reservations, order_id: str) -> rpb.ReleaseStockResponse:
    return reservations.ReleaseStock(rpb.ReleaseStockRequest(order_id=order_id))


def test_reserve_takes_every_item_and_reports_them(inventory, reservations, make_product) -> None:
    a, b = make_product(stock=10), make_product(stock=4)
    order_id = new_order_id()
    response = reservations.ReserveStock(
        reserve_request(order_id, {b.product_id: 4, a.product_id: 3})
    )
    assert response.order_id == order_id
    assert response.newly_reserved is True
    assert _items(response.items) == sorted([(a.product_id, 3), (b.product_id, 4)])
    assert (stock_of(inventory, a.product_id), stock_of(inventory, b.product_id)) == (7, 0)


def test_repeated_reserve_decrements_once_and_returns_the_first_outcome(
    inventory, reservations, make_product
) -> None:
    product = make_product(stock=10)
    order_id = new_order_id()
    first = reservations.ReserveStock(reserve_request(order_id, {product.product_id: 3}))
    # A repeat returns what was reserved first, whatever the repeat asks for.
    again = reservations.ReserveStock(reserve_request(order_id, {product.product_id: 5}))
    assert (first.newly_reserved, again.newly_reserved) == (True, False)
    assert _items(again.items) == _items(first.items) == [(product.product_id, 3)]
    assert stock_of(inventory, product.product_id) == 7


def test_one_short_product_reserves_nothing_and_is_named(
    inventory, reservations, make_product
) -> None:
    plenty, short, also_plenty = make_product(stock=50), make_product(stock=2), make_product(stock=9)
    order_id = new_order_id()
    request = reserve_request(
        order_id, {also_plenty.product_id: 9, short.product_id: 5, plenty.product_id: 1}
    )
    error = rpc_error(lambda: reservations.ReserveStock(request))

    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert f"product {short.product_id} (requested 5, available 2)" in error.details()
    [failure] = details_of(error, error_details_pb2.PreconditionFailure)
    assert [(v.type, v.subject, v.description) for v in failure.violations] == [
        ("STOCK", f"products/{short.product_id}", "requested 5, available 2")
    ]
    stocks = [stock_of(inventory, p.product_id) for p in (plenty, short, also_plenty)]
    assert stocks == [50, 2, 9]


def test_every_short_product_gets_a_violation(inventory, reservations, make_product) -> None:
    a, b = make_product(stock=0), make_product(stock=1)
    error = rpc_error(
        lambda: reservations.ReserveStock(
            reserve_request(new_order_id(), {a.product_id: 1, b.product_id: 2})
        )
    )
    [failure] = details_of(error, error_details_pb2.PreconditionFailure)
    assert sorted(v.subject for v in failure.violations) == sorted(
        [f"products/{a.product_id}", f"products/{b.product_id}"]
    )


def test_a_rejected_order_stays_rejected_even_after_restock(
    inventory, reservations, make_product
) -> None:
    product = make_product(stock=1)
    order_id = new_order_id()
    request = reserve_request(order_id, {product.product_id: 2})
    first = rpc_error(lambda: reservations.ReserveStock(request))
    inventory.SetStock(pb.SetStockRequest(product_id=product.product_id, stock_level=100))
    again = rpc_error(lambda: reservations.ReserveStock(request))
    assert again.code() is first.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert again.details() == first.details()
    assert stock_of(inventory, product.product_id) == 100


def test_unknown_product_is_not_found_and_records_nothing(
    inventory, reservations, make_product
) -> None:
    product = make_product(stock=5)
    unknown = 2**62 + 11
    order_id = new_order_id()
    error = rpc_error(
        lambda: reservations.ReserveStock(
            reserve_request(order_id, {product.product_id: 1, unknown: 1})
        )
    )
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert str(unknown) in error.details()
    assert stock_of(inventory, product.product_id) == 5
    # Nothing was recorded for the order, so a corrected request goes through.
    retried = reservations.ReserveStock(reserve_request(order_id, {product.product_id: 1}))
    assert retried.newly_reserved is True
    assert stock_of(inventory, product.product_id) == 4


def test_release_gives_stock_back_once(inventory, reservations, make_product) -> None:
    a, b = make_product(stock=6), make_product(stock=6)
    order_id = new_order_id()
    reservations.ReserveStock(reserve_request(order_id, {a.product_id: 2, b.product_id: 5}))
    first = _release(reservations, order_id)
    second = _release(reservations, order_id)
    assert _items(first.released_items) == sorted([(a.product_id, 2), (b.product_id, 5)])
    assert list(second.released_items) == []
    assert (stock_of(inventory, a.product_id), stock_of(inventory, b.product_id)) == (6, 6)


def test_reserve_after_release_is_refused(inventory, reservations, make_product) -> None:
    product = make_product(stock=6)
    order_id = new_order_id()
    reservations.ReserveStock(reserve_request(order_id, {product.product_id: 2}))
    _release(reservations, order_id)
    error = rpc_error(
        lambda: reservations.ReserveStock(reserve_request(order_id, {product.product_id: 2}))
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == f"reservation for order {order_id} was already released"
    assert stock_of(inventory, product.product_id) == 6


def test_release_before_any_reserve_bars_a_late_reserve(
    inventory, reservations, make_product
) -> None:
    product = make_product(stock=3)
    order_id = new_order_id()
    assert list(_release(reservations, order_id).released_items) == []
    error = rpc_error(
        lambda: reservations.ReserveStock(reserve_request(order_id, {product.product_id: 1}))
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert stock_of(inventory, product.product_id) == 3


def test_release_of_a_rejected_order_gives_nothing_back(
    inventory, reservations, make_product
) -> None:
    product = make_product(stock=1)
    order_id = new_order_id()
    rpc_error(lambda: reservations.ReserveStock(reserve_request(order_id, {product.product_id: 2})))
    assert list(_release(reservations, order_id).released_items) == []
    assert stock_of(inventory, product.product_id) == 1


def test_unknown_single_product_is_not_found_and_records_nothing(
    inventory, reservations, make_product
) -> None:
    unknown = 2**62 + 13
    order_id = new_order_id()
    error = rpc_error(
        lambda: reservations.ReserveStock(reserve_request(order_id, {unknown: 1}))
    )
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert str(unknown) in error.details()
    product = make_product(stock=5)
    retried = reservations.ReserveStock(reserve_request(order_id, {product.product_id: 2}))
    assert retried.newly_reserved is True
    assert stock_of(inventory, product.product_id) == 3


def test_single_item_short_by_one_unit_is_rejected_and_changes_nothing(
    inventory, reservations, make_product
) -> None:
    product = make_product(stock=3)
    order_id = new_order_id()
    error = rpc_error(
        lambda: reservations.ReserveStock(reserve_request(order_id, {product.product_id: 4}))
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert f"product {product.product_id} (requested 4, available 3)" in error.details()
    assert stock_of(inventory, product.product_id) == 3
    # The refusal was recorded: releasing it gives nothing back.
    assert list(_release(reservations, order_id).released_items) == []
    assert stock_of(inventory, product.product_id) == 3


def test_many_items_reserve_all_or_nothing(inventory, reservations, make_product) -> None:
    # More items than one reservation statement takes: the per-item transaction path.
    products = [make_product(stock=3) for _ in range(20)]
    everything = {p.product_id: 2 for p in products}
    reserved = reservations.ReserveStock(reserve_request(new_order_id(), everything))
    assert reserved.newly_reserved is True
    assert _items(reserved.items) == sorted(everything.items())

    too_much = {p.product_id: 1 for p in products} | {products[-1].product_id: 2}
    error = rpc_error(lambda: reservations.ReserveStock(reserve_request(new_order_id(), too_much)))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert f"product {products[-1].product_id} (requested 2, available 1)" in error.details()
    assert [stock_of(inventory, p.product_id) for p in products] == [1] * 20
