"""Reading and changing stock levels directly (not through reservations)."""

from __future__ import annotations

import logging

from services.common.logs import log_event
from services.inventory.domain.errors import (
    ProductNotFound,
    StockLimitExceeded,
    StockWouldGoNegative,
)
from services.inventory.domain.products import MAX_STOCK_LEVEL, StockLevel
from services.inventory.service_layer.dependencies import InventoryServiceDeps
from services.inventory.service_layer.ports import ProductRepository

logger = logging.getLogger("fulfillment.inventory")


async def get_stock(product_id: int, deps: InventoryServiceDeps) -> StockLevel:
    levels = await deps.uow.autocommit(
        lambda repos: repos.products.stock_levels([product_id]), name="get_stock"
    )
    if product_id not in levels:
        raise ProductNotFound([product_id])
    return StockLevel(product_id, levels[product_id])


async def set_stock(product_id: int, stock_level: int, deps: InventoryServiceDeps) -> StockLevel:
    updated = await deps.uow.transaction(
        lambda repos: repos.products.set_stock(product_id, stock_level), name="set_stock"
    )
    if not updated:
        raise ProductNotFound([product_id])
    log_event(logger, "stock_set", product_id=product_id, stock_level=stock_level)
    return StockLevel(product_id, stock_level)


async def adjust_stock(product_id: int, delta: int, deps: InventoryServiceDeps) -> StockLevel:
    """Add a signed `delta`; a result below 0 or above MAX_STOCK_LEVEL changes nothing."""
    level = await deps.uow.transaction(
        lambda repos: _adjust_stock(repos.products, product_id, delta), name="adjust_stock"
    )
    log_event(
        logger, "stock_adjusted", product_id=product_id, delta=delta,
        stock_level=level.stock_level,
    )
    return level


async def _adjust_stock(products: ProductRepository, product_id: int, delta: int) -> StockLevel:
    new_level = await products.adjust_stock_within(product_id, delta, MAX_STOCK_LEVEL)
    if new_level is None:
        # Lock the row so the reason we give is the real one: the level cannot move
        # between this read and the retried update.
        current = await products.lock_stock_levels([product_id])
        if product_id not in current:
            raise ProductNotFound([product_id])
        stock_level = current[product_id]
        if stock_level + delta < 0:
            raise StockWouldGoNegative(product_id, stock_level, delta)
        if delta > 0 and stock_level + delta > MAX_STOCK_LEVEL:
            raise StockLimitExceeded(product_id, stock_level, delta, MAX_STOCK_LEVEL)
        new_level = await products.adjust_stock_within(product_id, delta, MAX_STOCK_LEVEL)
        assert new_level is not None, "a locked row that admits the change must take it"
    return StockLevel(product_id, new_level)
