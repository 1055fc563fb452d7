"""Products and stock levels, and the limits a request must respect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.common.errors import Validator
from services.common.text import check_text
from services.inventory.domain.pricing import PriceError, parse_price

SKU_MAX_LENGTH = 100
NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 5000
# Far above any real warehouse, and far enough below 2**63 that adding two levels or a
# level and a delta can never overflow the bigint column.
MAX_STOCK_LEVEL = 10**12
MAX_BATCH_GET = 1000


@dataclass(frozen=True)
class NewProduct:
    sku: str
    name: str
    description: str
    price: Decimal
    initial_stock: int


@dataclass(frozen=True)
class Product:
    product_id: int
    sku: str
    name: str
    description: str
    price: Decimal
    stock_level: int
    create_time: datetime


@dataclass(frozen=True)
class StockLevel:
    product_id: int
    stock_level: int


def new_product(
    sku: str, name: str, description: str, price: str, initial_stock: int | None
) -> NewProduct:
    """The product a CreateProduct request describes; InvalidArgument lists every problem."""
    validator = Validator()
    check_text(validator, "sku", sku, max_length=SKU_MAX_LENGTH, identifier=True)
    check_text(validator, "name", name, max_length=NAME_MAX_LENGTH)
    check_text(
        validator, "description", description,
        max_length=DESCRIPTION_MAX_LENGTH, required=False, multiline=True,
    )
    parsed_price = Decimal(0)
    try:
        parsed_price = parse_price(price)
    except PriceError as exc:
        validator.fail("price", str(exc))
    stock = 0 if initial_stock is None else initial_stock
    check_stock_level(validator, "initial_stock", stock)
    validator.raise_if_invalid()
    return NewProduct(sku, name, description, parsed_price, stock)


def check_product_id(validator: Validator, field_path: str, product_id: int) -> bool:
    return validator.check(product_id > 0, field_path, f"must be > 0, got {product_id}")


def check_stock_level(validator: Validator, field_path: str, stock_level: int) -> bool:
    if not validator.check(stock_level >= 0, field_path, f"must be >= 0, got {stock_level}"):
        return False
    return validator.check(
        stock_level <= MAX_STOCK_LEVEL, field_path,
        f"must be at most {MAX_STOCK_LEVEL}, got {stock_level}",
    )


def check_stock_delta(validator: Validator, field_path: str, delta: int) -> bool:
    return validator.check(
        abs(delta) <= MAX_STOCK_LEVEL, field_path,
        f"must be between -{MAX_STOCK_LEVEL} and {MAX_STOCK_LEVEL}, got {delta}",
    )


def check_product_ids(validator: Validator, field_path: str, product_ids: list[int]) -> bool:
    """A batch of distinct, positive ids of bounded size."""
    if not product_ids:
        validator.fail(field_path, "must name at least one product")
        return False
    if len(product_ids) > MAX_BATCH_GET:
        validator.fail(
            field_path, f"must name at most {MAX_BATCH_GET} products, got {len(product_ids)}"
        )
        return False
    violations_before = len(validator.violations)
    first_index: dict[int, int] = {}
    for index, product_id in enumerate(product_ids):
        item_path = f"{field_path}[{index}]"
        if not check_product_id(validator, item_path, product_id):
            continue
        if product_id in first_index:
            validator.fail(
                item_path, f"duplicates {field_path}[{first_index[product_id]}] ({product_id})"
            )
        else:
            first_index[product_id] = index
    return len(validator.violations) == violations_before
