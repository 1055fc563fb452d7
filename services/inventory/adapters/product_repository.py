"""Reads and writes of inventory.products; every function runs inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ARRAY, BigInteger, Row, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.adapters.tables import products
from services.inventory.domain.products import NewProduct, Product, StockLevel


async def insert_product(conn: AsyncConnection, new: NewProduct) -> Product | None:
    """The created product, or None when the sku is taken (nothing is written then)."""
    statement = (
        insert(products)
        .values(
            sku=new.sku, name=new.name, description=new.description,
            price=new.price, stock_level=new.initial_stock,
        )
        .on_conflict_do_nothing(index_elements=[products.c.sku])
        .returning(*products.c)
    )
    row = (await conn.execute(statement)).first()
    return None if row is None else _product(row)


# Built once, with the ids as one array parameter: the orders service reads products
# per order, and one statement text for any number of ids is one prepared statement.
_ANY_OF_IDS = products.c.id == any_(bindparam("product_ids", type_=ARRAY(BigInteger)))
_GET_PRODUCTS = select(products).where(_ANY_OF_IDS)
_STOCK_LEVELS = select(products.c.id, products.c.stock_level).where(_ANY_OF_IDS)
_LOCK_STOCK_LEVELS = _STOCK_LEVELS.order_by(products.c.id).with_for_update(key_share=True)


async def get_product(conn: AsyncConnection, product_id: int) -> Product | None:
    return (await get_products(conn, [product_id])).get(product_id)


async def get_products(conn: AsyncConnection, product_ids: Sequence[int]) -> dict[int, Product]:
    rows = await conn.execute(_GET_PRODUCTS, {"product_ids": list(product_ids)})
    return {row.id: _product(row) for row in rows}


async def list_products_after(
    conn: AsyncConnection, after_id: int, limit: int
) -> list[Product]:
    """Products with id > after_id in id order: a keyset page that inserts cannot shift."""
    statement = (
        select(products).where(products.c.id > after_id).order_by(products.c.id).limit(limit)
    )
    return [_product(row) for row in await conn.execute(statement)]


async def stock_levels(conn: AsyncConnection, product_ids: Sequence[int]) -> dict[int, int]:
    """Current stock of those of `product_ids` that exist."""
    rows = await conn.execute(_STOCK_LEVELS, {"product_ids": list(product_ids)})
    return {row.id: row.stock_level for row in rows}


async def lock_stock_levels(
    conn: AsyncConnection, product_ids: Sequence[int]
) -> dict[int, int]:
    """Like stock_levels, but locks the rows, in ascending id order like every other writer.

    FOR NO KEY UPDATE is the lock a stock UPDATE takes: it excludes stock writers but not
    the FOR KEY SHARE of a reservation line's foreign-key check, so a transaction that has
    written lines and waits to decrement is never queued behind this lock and vice versa.
    """
    rows = await conn.execute(_LOCK_STOCK_LEVELS, {"product_ids": list(product_ids)})
    return {row.id: row.stock_level for row in rows}


async def get_stock(conn: AsyncConnection, product_id: int) -> StockLevel | None:
    level = await stock_levels(conn, [product_id])
    return None if product_id not in level else StockLevel(product_id, level[product_id])


async def set_stock(conn: AsyncConnection, product_id: int, stock_level: int) -> bool:
    statement = (
        update(products).where(products.c.id == product_id).values(stock_level=stock_level)
    )
    return (await conn.execute(statement)).rowcount == 1


async def adjust_stock_within(
    conn: AsyncConnection, product_id: int, delta: int, ceiling: int
) -> int | None:
    """Add `delta` unless the result would leave [0, ceiling]; the new level, or None.

    The bound is checked in the UPDATE's own WHERE clause, so it holds against concurrent
    writers: a concurrent update of the row makes this one wait and then re-evaluate the
    condition on the committed row. The ceiling only stops increases, so a level already
    above it can still be lowered.
    """
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
    return (await conn.execute(statement)).scalar_one_or_none()


# Built once: reservations run it per line, and a construct built per call costs a cache
# key computation every time.
_TAKE_STOCK = (
    update(products)
    .where(products.c.id == bindparam("product_id"), products.c.stock_level >= bindparam("quantity"))
    .values(stock_level=products.c.stock_level - bindparam("quantity"))
    .returning(products.c.stock_level)
)


async def take_stock(conn: AsyncConnection, product_id: int, quantity: int) -> bool:
    """Decrement by `quantity` if that much is there; False (and no change) otherwise.

    Safe under any concurrency without SELECT ... FOR UPDATE: check and decrement are one
    statement. Under READ COMMITTED a concurrent writer of the row makes this UPDATE wait;
    PostgreSQL then re-evaluates `stock_level >= :q` against the newly committed version
    (EvalPlanQual), so it can neither oversell nor lose an update. The row stays locked
    until our transaction ends. The CHECK constraint stock_level >= 0 is the backstop.
    """
    result = await conn.execute(_TAKE_STOCK, {"product_id": product_id, "quantity": quantity})
    return result.first() is not None


async def return_stock(conn: AsyncConnection, product_id: int, quantity: int) -> None:
    statement = (
        update(products)
        .where(products.c.id == product_id)
        .values(stock_level=products.c.stock_level + quantity)
    )
    await conn.execute(statement)


def _product(row: Row) -> Product:
    return Product(
        product_id=row.id,
        sku=row.sku,
        name=row.name,
        description=row.description,
        price=row.price,
        stock_level=row.stock_level,
        create_time=row.create_time,
    )
