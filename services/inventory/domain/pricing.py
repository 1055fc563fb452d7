"""Prices: decimal strings with at most two fractional digits, stored as NUMERIC(12,2)."""

from __future__ import annotations

import re
from decimal import Decimal

MAX_PRICE = Decimal("9999999999.99")
_MAX_PRICE_TEXT_LENGTH = 32
_PRICE_SHAPE = re.compile(r"[0-9]+(\.[0-9]+)?")


class PriceError(ValueError):
    """Why a price string is not acceptable, phrased for the caller."""


def parse_price(text: str) -> Decimal:
    """'1200.99' -> Decimal('1200.99'); refuses anything that is not a plain amount."""
    if not text:
        raise PriceError("must not be empty")
    if len(text) > _MAX_PRICE_TEXT_LENGTH:
        raise PriceError(f"must be at most {MAX_PRICE}")
    if text.startswith("-") and _PRICE_SHAPE.fullmatch(text[1:]):
        raise PriceError(f"must be >= 0, got {text}")
    if not _PRICE_SHAPE.fullmatch(text):
        raise PriceError(f"must be a decimal amount such as 12.99, got {text!r}")
    _, _, fraction = text.partition(".")
    if len(fraction) > 2:
        raise PriceError(f"must have at most 2 fractional digits, got {text}")
    price = Decimal(text)
    if price > MAX_PRICE:
        raise PriceError(f"must be at most {MAX_PRICE}, got {text}")
    return price.quantize(Decimal("0.01"))


def format_price(price: Decimal) -> str:
    return f"{price.quantize(Decimal('0.01')):f}"
