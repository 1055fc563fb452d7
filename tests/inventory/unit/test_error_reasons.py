"""The structured reasons inventory errors carry, which other services read instead of the
message: strings in the metadata, as in google.rpc.ErrorInfo."""

from __future__ import annotations

import pytest

from services.common.errors import Reason
from services.inventory.domain.errors import (
    MAX_PRODUCTS_NAMED_IN_REASONS,
    InsufficientStock,
    ProductNotFound,
    ReservationAlreadyReleased,
)
from services.inventory.domain.reservations import Shortfall

pytestmark = pytest.mark.unit


def reasons(error) -> list[tuple[Reason, dict[str, str]]]:
    return [(info.reason, dict(info.metadata)) for info in error.infos]


def test_insufficient_stock_has_one_reason_per_short_product() -> None:
    error = InsufficientStock("o-1", [Shortfall(12, 3, 1), Shortfall(14, 5, 0)])
    assert reasons(error) == [
        (Reason.INSUFFICIENT_STOCK, {"product_id": "12", "requested": "3", "available": "1"}),
        (Reason.INSUFFICIENT_STOCK, {"product_id": "14", "requested": "5", "available": "0"}),
    ]


def test_product_not_found_has_one_reason_per_unknown_id_in_ascending_order() -> None:
    assert reasons(ProductNotFound([9, 7, 9])) == [
        (Reason.PRODUCT_NOT_FOUND, {"product_id": "7"}),
        (Reason.PRODUCT_NOT_FOUND, {"product_id": "9"}),
    ]


def test_an_already_released_reservation_names_its_order() -> None:
    assert reasons(ReservationAlreadyReleased("o-1")) == [
        (Reason.RESERVATION_RELEASED, {"order_id": "o-1"})
    ]


def test_reasons_name_the_lowest_ids_only_up_to_a_bound_the_message_names_all() -> None:
    many = list(range(1000, 1000 + MAX_PRODUCTS_NAMED_IN_REASONS + 5))
    unknown = ProductNotFound(reversed(many))
    short = InsufficientStock("o-1", [Shortfall(pid, 2, 1) for pid in reversed(many)])
    for error in (unknown, short):
        named = [int(metadata["product_id"]) for _, metadata in reasons(error)]
        assert named == many[:MAX_PRODUCTS_NAMED_IN_REASONS]
        assert all(str(pid) in error.message for pid in many)
    assert len(short.violations) == len(many)
