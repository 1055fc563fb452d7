"""Prices are plain decimal amounts with at most two fractional digits."""

from decimal import Decimal

import pytest

from services.inventory.domain.pricing import MAX_PRICE, PriceError, format_price, parse_price

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Decimal("0.00")),
        ("12", Decimal("12.00")),
        ("12.5", Decimal("12.50")),
        ("1200.99", Decimal("1200.99")),
        ("007.10", Decimal("7.10")),
        ("9999999999.99", MAX_PRICE),
    ],
)
def test_parse_price_accepts_plain_amounts(text: str, expected: Decimal) -> None:
    assert parse_price(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must not be empty"),
        ("-1", "must be >= 0"),
        ("-0.50", "must be >= 0"),
        ("abc", "decimal amount"),
        ("1e3", "decimal amount"),
        ("NaN", "decimal amount"),
        ("Infinity", "decimal amount"),
        (" 12.00", "decimal amount"),
        ("12.", "decimal amount"),
        (".5", "decimal amount"),
        ("1,000.00", "decimal amount"),
        ("+5", "decimal amount"),
        ("١٢", "decimal amount"),
        ("12.345", "at most 2 fractional digits"),
        ("10000000000.00", "at most 9999999999.99"),
        ("9" * 40, "at most 9999999999.99"),
    ],
)
def test_parse_price_refuses_anything_else(text: str, reason: str) -> None:
    with pytest.raises(PriceError, match=reason):
        parse_price(text)


def test_format_price_always_shows_two_fractional_digits() -> None:
    assert format_price(Decimal("12.5")) == "12.50"
    assert format_price(Decimal("0")) == "0.00"
    assert format_price(Decimal("1E+3")) == "1000.00"
