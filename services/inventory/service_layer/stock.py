"""Reading and changing stock levels directly (not through reservations)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.logs import log_event
from services.inventory.adapters import product_repository
from services.inventory.domain.errors import (
    ProductNotFound,
    StockLimitExceeded,
    StockWouldGoNegative,
)
from services.inventory.domain.products import MAX_STOCK_LEVEL, StockLevel
from services.inventory.service_layer.unit_of_work import UnitOfWork

logger = logging.getLogger("fulfillment.inventory")


async def get_stock(uow: UnitOfWork, product_id: int) -> StockLevel:
    level = await uow.run_single_statement(
        lambda conn: product_repository.get_stock(conn, product_id)
    )
    if level is None:
        raise ProductNotFound([product_id])
    return level


async def set_stock(uow: UnitOfWork, product_id: int, stock_level: int) -> StockLevel:
    updated = await uow.run(
        lambda conn: product_repository.set_stock(conn, product_id, stock_level),
        name="set_stock",
    )
    if not updated:
        raise ProductNotFound([product_id])
    log_event(logger, "stock_set", product_id=product_id, stock_level=stock_level)
    return StockLevel(product_id, stock_level)


async def adjust_stock(uow: UnitOfWork, product_id: int, delta: int) -> StockLevel:
    level = await uow.run(
        lambda conn: _adjust_stock(conn, product_id, delta), name="adjust_stock"
    )
    log_event(
        logger, "stock_adjusted", product_id=product_id, delta=delta,
        stock_level=level.stock_level,
    )
    return level


async def _adjust_stock(conn: AsyncConnection, product_id: int, delta: int) -> StockLevel:
    new_level = await product_repository.adjust_stock_within(
        conn, product_id, delta, MAX_STOCK_LEVEL
    )
    if new_level is None:
        # Lock the row so the reason we give is the real one: the level cannot move
        # between this read and the retried update.
        current = await product_repository.lock_stock_levels(conn, [product_id])
        if product_id not in current:
            raise ProductNotFound([product_id])
        stock_level = current[product_id]
        if stock_level + delta < 0:
            raise StockWouldGoNegative(product_id, stock_level, delta)
        if delta > 0 and stock_level + delta > MAX_STOCK_LEVEL:
            raise StockLimitExceeded(product_id, stock_level, delta, MAX_STOCK_LEVEL)
        new_level = await product_repository.adjust_stock_within(
            conn, product_id, delta, MAX_STOCK_LEVEL
        )
        assert new_level is not None, "a locked row that admits the change must take it"
    return StockLevel(product_id, new_level)
