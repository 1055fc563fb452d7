"""inventory.products in PostgreSQL: the catalog and its stock levels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Row, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert

from services.inventory.adapters.statement_executors import StatementExecutor
from services.inventory.adapters.tables import products
from services.inventory.domain.products import NewProduct, Product

# Built once, with the ids as one array parameter: the orders service reads products
# per order, and one statement text for any number of ids is one prepared statement.
_ANY_OF_IDS = products.c.id == any_(bindparam("product_ids", type_=ARRAY(BigInteger)))
_GET_PRODUCTS = select(products).where(_ANY_OF_IDS)
_STOCK_LEVELS = select(products.c.id, products.c.stock_level).where(_ANY_OF_IDS)
# FOR NO KEY UPDATE is the lock a stock UPDATE takes: it excludes stock writers but not
# the FOR KEY SHARE of a reservation line's foreign-key check, so a transaction that has
# written lines and waits to decrement is never queued behind this lock and vice versa.
_LOCK_STOCK_LEVELS = _STOCK_LEVELS.order_by(products.c.id).with_for_update(key_share=True)

# Built once: reservations run it per line, and a construct built per call costs a cache
# key computation every time.
#
# Safe under any concurrency without SELECT ... FOR UPDATE: check and decrement are one
# statement. Under READ COMMITTED a concurrent writer of the row makes this UPDATE wait;
# PostgreSQL then re-evaluates `stock_level >= :q` against the newly committed version
# (EvalPlanQual), so it can neither oversell nor lose an update. The row stays locked
# until our transaction ends. The CHECK constraint stock_level >= 0 is the backstop.
_TAKE_STOCK = (
    update(products)
    .where(products.c.id == bindparam("product_id"), products.c.stock_level >= bindparam("quantity"))
    .values(stock_level=products.c.stock_level - bindparam("quantity"))
    .returning(products.c.stock_level)
)


class SqlProductRepository:
    def __init__(self, db: StatementExecutor) -> None:
        self._db = db

    async def insert_product(self, new: NewProduct) -> Product | None:
        statement = (
            insert(products)
            .values(
                sku=new.sku, name=new.name, description=new.description,
                price=new.price, stock_level=new.initial_stock,
            )
            .on_conflict_do_nothing(index_elements=[products.c.sku])
            .returning(*products.c)
        )
        row = (await self._db.execute(statement)).first()
        return None if row is None else _product(row)

    async def get_products(self, product_ids: Sequence[int]) -> dict[int, Product]:
        rows = await self._db.execute(_GET_PRODUCTS, {"product_ids": list(product_ids)})
        return {row.id: _product(row) for row in rows}

    async def list_products_after(self, after_id: int, limit: int) -> list[Product]:
        statement = (
            select(products).where(products.c.id > after_id).order_by(products.c.id).limit(limit)
        )
        return [_product(row) for row in await self._db.execute(statement)]

    async def stock_levels(self, product_ids: Sequence[int]) -> dict[int, int]:
        rows = await self._db.execute(_STOCK_LEVELS, {"product_ids": list(product_ids)})
        return {row.id: row.stock_level for row in rows}

    async def lock_stock_levels(self, product_ids: Sequence[int]) -> dict[int, int]:
        rows = await self._db.execute(_LOCK_STOCK_LEVELS, {"product_ids": list(product_ids)})
        return {row.id: row.stock_level for row in rows}

    async def set_stock(self, product_id: int, stock_level: int) -> bool:
        statement = (
            update(products).where(products.c.id == product_id).values(stock_level=stock_level)
        )
        return (await self._db.execute(statement)).rowcount == 1

    async def adjust_stock_within(self, product_id: int, delta: int, ceiling: int) -> int | None:
        # The bounds are in the UPDATE's own WHERE clause, so they hold against concurrent
        # writers: a concurrent update of the row makes this one wait and then re-evaluate
        # the condition on the committed row.
        new_level = products.c.stock_level + delta
        conditions = [products.c.id == product_id, new_level >= 0]
        if delta > 0:
            conditions.append(new_level <= ceiling)
        statement = (
            update(products)
            .where(*conditions)
            .values(stock_level=new_level)
            .returning(products.c.stock_level)
        )
        level: int | None = (await self._db.execute(statement)).scalar_one_or_none()
        return level

    async def take_stock(self, product_id: int, quantity: int) -> bool:
        result = await self._db.execute(
            _TAKE_STOCK, {"product_id": product_id, "quantity": quantity}
        )
        return result.first() is not None

    async def return_stock(self, product_id: int, quantity: int) -> None:
        statement = (
            update(products)
            .where(products.c.id == product_id)
            .values(stock_level=products.c.stock_level + quantity)
        )
        await self._db.execute(statement)


def _product(row: Row[Any]) -> Product:
    return Product(
        product_id=row.id,
        sku=row.sku,
        name=row.name,
        description=row.description,
        price=row.price,
        stock_level=row.stock_level,
        create_time=row.create_time,
    )
