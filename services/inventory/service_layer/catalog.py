"""Creating and looking up products."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from services.common.logs import log_event
from services.inventory.adapters import product_repository
from services.inventory.domain.errors import DuplicateSku, ProductNotFound
from services.inventory.domain.pricing import format_price
from services.inventory.domain.products import NewProduct, Product
from services.inventory.service_layer.unit_of_work import UnitOfWork

logger = logging.getLogger("fulfillment.inventory")


@dataclass(frozen=True)
class ProductPage:
    products: list[Product]
    # Where the next page starts after; None when this page is the last.
    next_after_id: int | None


async def create_product(uow: UnitOfWork, new: NewProduct) -> Product:
    product = await uow.run(
        lambda conn: product_repository.insert_product(conn, new), name="create_product"
    )
    if product is None:
        raise DuplicateSku(new.sku)
    log_event(
        logger, "product_created", product_id=product.product_id, sku=product.sku,
        price=format_price(product.price), stock_level=product.stock_level,
    )
    return product


async def get_product(uow: UnitOfWork, product_id: int) -> Product:
    product = await uow.run_single_statement(
        lambda conn: product_repository.get_product(conn, product_id)
    )
    if product is None:
        raise ProductNotFound([product_id])
    return product


async def batch_get_products(uow: UnitOfWork, product_ids: Sequence[int]) -> list[Product]:
    """The products in the order asked for; NOT_FOUND names every id that does not exist."""
    found = await uow.run_single_statement(
        lambda conn: product_repository.get_products(conn, product_ids)
    )
    missing = [product_id for product_id in product_ids if product_id not in found]
    if missing:
        raise ProductNotFound(missing)
    return [found[product_id] for product_id in product_ids]


async def list_products(uow: UnitOfWork, after_id: int, page_size: int) -> ProductPage:
    # One row more than the page tells whether another page exists without a count.
    rows = await uow.run_single_statement(
        lambda conn: product_repository.list_products_after(conn, after_id, page_size + 1)
    )
    page = rows[:page_size]
    has_more = len(rows) > page_size
    return ProductPage(page, page[-1].product_id if has_more else None)
