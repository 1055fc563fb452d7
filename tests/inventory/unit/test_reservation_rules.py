"""What a reservation request must look like, and how shortfalls are computed."""

import pytest

from services.common.errors import InvalidArgument
from services.inventory.domain.errors import InsufficientStock, ProductNotFound
from services.inventory.domain.reservations import (
    MAX_RESERVATION_ITEMS,
    ORDER_ID_MAX_LENGTH,
    ReservationLine,
    Shortfall,
    release_request,
    reservation_request,
    shortfalls_of,
)

pytestmark = pytest.mark.unit


def test_lines_are_sorted_by_product_id_whatever_the_request_order() -> None:
    request = reservation_request("order-1", [(9, 1), (3, 2), (5, 7)])
    assert request.lines == (
        ReservationLine(3, 2), ReservationLine(5, 7), ReservationLine(9, 1)
    )
    assert request.product_ids == [3, 5, 9]


@pytest.mark.parametrize(
    ("order_id", "items", "bad_fields"),
    [
        ("", [(1, 1)], ["order_id"]),
        ("x" * (ORDER_ID_MAX_LENGTH + 1), [(1, 1)], ["order_id"]),
        ("order\x00", [(1, 1)], ["order_id"]),
        ("order", [], ["items"]),
        ("order", [(1, 1)] * (MAX_RESERVATION_ITEMS + 1), ["items"]),
        ("order", [(1, 0)], ["items[0].quantity"]),
        ("order", [(1, -3)], ["items[0].quantity"]),
        ("order", [(1, 10**13)], ["items[0].quantity"]),
        ("order", [(0, 1)], ["items[0].product_id"]),
        ("order", [(1, 1), (2, 1), (1, 5)], ["items[2].product_id"]),
    ],
)
def test_bad_reservation_requests_name_the_field(
    order_id: str, items: list[tuple[int, int]], bad_fields: list[str]
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        reservation_request(order_id, items)
    assert [v.field for v in caught.value.violations] == bad_fields


def test_release_needs_an_order_id() -> None:
    assert release_request("order-1") == "order-1"
    with pytest.raises(InvalidArgument, match="order_id"):
        release_request("")


def test_shortfalls_name_only_the_products_that_are_short() -> None:
    lines = (ReservationLine(1, 5), ReservationLine(2, 3), ReservationLine(3, 1))
    assert shortfalls_of(lines, {1: 5, 2: 2, 3: 0}) == [Shortfall(2, 3, 2), Shortfall(3, 1, 0)]


def test_insufficient_stock_reports_requested_and_available_per_product() -> None:
    error = InsufficientStock("o-1", [Shortfall(2, 3, 2)])
    assert "product 2 (requested 3, available 2)" in error.message
    [violation] = error.violations
    assert (violation.type, violation.subject, violation.description) == (
        "STOCK", "products/2", "requested 3, available 2"
    )


def test_product_not_found_names_every_missing_id() -> None:
    assert ProductNotFound([7]).message == "product 7 does not exist"
    assert ProductNotFound([9, 7, 9]).message == "products 7, 9 do not exist"
