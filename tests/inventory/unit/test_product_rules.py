"""What a CreateProduct request, a product id or a stock change must look like."""

from decimal import Decimal

import pytest

from services.common.errors import InvalidArgument, Validator
from services.inventory.domain.products import (
    MAX_BATCH_GET,
    MAX_STOCK_LEVEL,
    SKU_MAX_LENGTH,
    check_product_ids,
    check_stock_delta,
    check_stock_level,
    new_product,
)

pytestmark = pytest.mark.unit


def test_new_product_keeps_valid_values_and_defaults_stock_to_zero() -> None:
    product = new_product("SKU-1", "Widget", "A\nmultiline\tdescription", "3.5", None)
    assert product.sku == "SKU-1"
    assert product.price == Decimal("3.50")
    assert product.initial_stock == 0
    assert product.description == "A\nmultiline\tdescription"


def test_new_product_reports_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        new_product("", " ", "", "-1", -5)
    fields = [v.field for v in caught.value.violations]
    assert fields == ["sku", "name", "price", "initial_stock"]
    assert "sku: must not be empty" in caught.value.message


@pytest.mark.parametrize(
    ("sku", "reason"),
    [
        ("x" * (SKU_MAX_LENGTH + 1), f"at most {SKU_MAX_LENGTH} characters"),
        (" padded", "whitespace"),
        ("nul\x00byte", "control characters"),
        ("new\nline", "control characters"),
    ],
)
def test_new_product_refuses_bad_skus(sku: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        new_product(sku, "Widget", "", "1.00", 1)
    [violation] = caught.value.violations
    assert violation.field == "sku"
    assert reason in violation.description


def test_description_is_optional_but_refuses_nul() -> None:
    assert new_product("s", "n", "", "1", 0).description == ""
    with pytest.raises(InvalidArgument, match="description"):
        new_product("s", "n", "bad\x00", "1", 0)


@pytest.mark.parametrize(
    ("level", "ok"), [(0, True), (MAX_STOCK_LEVEL, True), (-1, False), (MAX_STOCK_LEVEL + 1, False)]
)
def test_stock_levels_are_bounded(level: int, ok: bool) -> None:
    assert check_stock_level(Validator(), "stock_level", level) is ok


@pytest.mark.parametrize(
    ("delta", "ok"),
    [(0, True), (-MAX_STOCK_LEVEL, True), (MAX_STOCK_LEVEL + 1, False), (-(2**63), False)],
)
def test_stock_deltas_are_bounded(delta: int, ok: bool) -> None:
    assert check_stock_delta(Validator(), "delta", delta) is ok


@pytest.mark.parametrize(
    ("ids", "bad_fields"),
    [
        ([1, 2, 3], []),
        ([], ["product_ids"]),
        ([1, 0, -4], ["product_ids[1]", "product_ids[2]"]),
        ([5, 6, 5], ["product_ids[2]"]),
        (list(range(1, MAX_BATCH_GET + 2)), ["product_ids"]),
    ],
)
def test_batch_product_ids_are_positive_distinct_and_bounded(
    ids: list[int], bad_fields: list[str]
) -> None:
    validator = Validator()
    check_product_ids(validator, "product_ids", ids)
    assert [v.field for v in validator.violations] == bad_fields
