"""Creating and looking up products."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common.logs import log_event
from services.common.pagination import int64_key, resolve_page_size
from services.inventory.domain.errors import DuplicateSku, ProductNotFound
from services.inventory.domain.pricing import format_price
from services.inventory.domain.products import NewProduct, Product
from services.inventory.service_layer.dependencies import InventoryServiceDeps

logger = logging.getLogger("fulfillment.inventory")

PRODUCTS_PAGE_TOKEN_KIND = "products"


@dataclass(frozen=True)
class ProductPage:
    products: list[Product]
    # Empty when this page is the last.
    next_page_token: str


async def create_product(new: NewProduct, deps: InventoryServiceDeps) -> Product:
    product = await deps.uow.transaction(
        lambda repos: repos.products.insert_product(new), name="create_product"
    )
    if product is None:
        raise DuplicateSku(new.sku)
    log_event(
        logger, "product_created", product_id=product.product_id, sku=product.sku,
        price=format_price(product.price), stock_level=product.stock_level,
    )
    return product


async def get_product(product_id: int, deps: InventoryServiceDeps) -> Product:
    found = await deps.uow.autocommit(
        lambda repos: repos.products.get_products([product_id]), name="get_product"
    )
    if product_id not in found:
        raise ProductNotFound([product_id])
    return found[product_id]


async def batch_get_products(
    product_ids: Sequence[int], deps: InventoryServiceDeps
) -> list[Product]:
    """The products in the order asked for; ProductNotFound names every id that does not exist."""
    found = await deps.uow.autocommit(
        lambda repos: repos.products.get_products(product_ids), name="batch_get_products"
    )
    missing = [product_id for product_id in product_ids if product_id not in found]
    if missing:
        raise ProductNotFound(missing)
    return [found[product_id] for product_id in product_ids]


async def list_products(
    page_size: int, page_token: str, deps: InventoryServiceDeps
) -> ProductPage:
    """Products in id order. Keyset pagination on the id: a product created while a caller
    pages sorts after the pages already read, so no product is skipped or repeated."""
    page_tokens = await deps.page_tokens.tokens()
    limit = resolve_page_size(page_size)
    after_id = page_tokens.decode(page_token, PRODUCTS_PAGE_TOKEN_KIND, None, parse=_after_id)
    # One row more than the page tells whether another page exists without a count.
    rows = await deps.uow.autocommit(
        lambda repos: repos.products.list_products_after(after_id or 0, limit + 1),
        name="list_products",
    )
    products = rows[:limit]
    next_token = ""
    if len(rows) > limit:
        next_token = page_tokens.encode(PRODUCTS_PAGE_TOKEN_KIND, [products[-1].product_id])
    return ProductPage(products, next_token)


def _after_id(last_key: list[Any]) -> int:
    (after_id,) = last_key
    return int64_key(after_id, minimum=1)
