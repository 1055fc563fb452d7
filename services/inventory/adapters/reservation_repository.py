"""inventory.reservations and reservation_items in PostgreSQL: stock held per order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache

import asyncpg
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import TextClause

from services.inventory.adapters.statement_executors import StatementExecutor
from services.inventory.adapters.tables import reservation_items, reservations
from services.inventory.domain.reservation_batches import BatchDecisions
from services.inventory.domain.reservations import (
    Reservation,
    ReservationLine,
    ReservationStatus,
    Shortfall,
)
from services.inventory.service_layer.ports import MAX_LINES_IN_ONE_STATEMENT


# One round trip claims the order and writes its lines. The lines are inserted only when
# the claim inserted the row (they select FROM claim), and only for products that exist
# (the join), so a caller compares the returned ids with what it asked for. Neither
# statement locks a product row against stock writers: the foreign-key check takes FOR
# KEY SHARE, which does not conflict with the FOR NO KEY UPDATE lock of a stock UPDATE.
def _claim_and_add_lines(only_existing_products: bool) -> str:
    """The `claim` and `added` CTEs: claim the order as RESERVED (nothing if it was claimed
    before) and, only when the claim inserted the row, insert the order's lines."""
    join = "JOIN inventory.products ON products.id = line.product_id" if only_existing_products else ""
    return f"""
    WITH claim AS (
        INSERT INTO inventory.reservations (order_id, status)
        VALUES (:order_id, 'RESERVED')
        ON CONFLICT (order_id) DO NOTHING
        RETURNING order_id
    ), added AS (
        INSERT INTO inventory.reservation_items (order_id, product_id, quantity)
        SELECT claim.order_id, line.product_id, line.quantity
        FROM claim
        CROSS JOIN unnest(CAST(:product_ids AS bigint[]), CAST(:quantities AS bigint[]))
            AS line (product_id, quantity)
        {join}
        RETURNING product_id
    )"""


_CLAIM_WITH_LINES = text(
    _claim_and_add_lines(only_existing_products=True)
    + """
    SELECT EXISTS (SELECT FROM claim) AS claimed,
           ARRAY(SELECT product_id FROM added) AS product_ids
    """
)


# A whole reservation of up to MAX_LINES_IN_ONE_STATEMENT lines as ONE statement, run in
# autocommit so that it is its own transaction: the product rows are locked from their
# decrement until the commit that ends the statement inside PostgreSQL, never across a
# round trip. (Inside a transaction it is just as atomic, in a savepoint, but its locks
# last until that transaction ends.) Why it is safe:
# - Order of effects. `added` selects FROM `claim`; `take_0` is gated on EXISTS (SELECT
#   FROM added) and each `take_k` on EXISTS (SELECT FROM take_<k-1>). Such an
#   uncorrelated EXISTS is a one-time filter, evaluated before the products row is read,
#   and a take_ returns its row only after updating (locking) it. So the reservation row
#   is claimed first (or found claimed, after waiting for a concurrent claim of the same
#   order to end), then the products are locked one after the other in the lines' order,
#   ascending id: the lock order of every other writer. When the order was already
#   claimed, the chain stops before it touches any product.
# - All or nothing. Each decrement is the conditional one of the contract,
#   `SET stock_level = stock_level - q WHERE id = :id AND stock_level >= q`: under READ
#   COMMITTED a concurrent writer makes it wait and then re-check the WHERE clause on the
#   committed row (EvalPlanQual), so it can neither oversell nor lose an update. A miss
#   returns no row, which stops the chain, and the final SELECT then divides by the
#   number of rows the last decrement took (zero): the division_by_zero error aborts the
#   whole statement, claim, lines and earlier decrements included. An unknown product
#   matches no row either (or fails its line's foreign key), which likewise aborts all of
#   it; the caller's locking second pass then tells a shortfall from a missing product.
#   CHECK (stock_level >= 0) stays as a second guard.
_STOCK_NOT_NEGATIVE = "ck_products_stock_level_not_negative"
_A_DECREMENT_MISSED = "22012"  # division_by_zero, raised on purpose by the final SELECT
_LINE_PRODUCT_EXISTS = "fk_reservation_items_product_id"


@cache
def _reserve_lines_statement(line_count: int) -> TextClause:
    takes = [
        f"""take_{k} AS (
        UPDATE inventory.products SET stock_level = stock_level - CAST(:q{k} AS bigint)
        WHERE id = CAST(:p{k} AS bigint)
          AND stock_level >= CAST(:q{k} AS bigint)
          AND EXISTS (SELECT FROM {"added" if k == 0 else f"take_{k - 1}"})
        RETURNING id
    )"""
        for k in range(line_count)
    ]
    return text(
        _claim_and_add_lines(only_existing_products=False)
        + f""", {", ".join(takes)}
    SELECT CASE
        WHEN NOT EXISTS (SELECT FROM claim) THEN NULL
        ELSE 1 / (SELECT count(*) FROM take_{line_count - 1})::int = 1
    END AS taken
    """
    )


# A batch of reservations (service_layer/reservations.py, _decide_batch) is one transaction
# run straight on asyncpg (UnitOfWork.hot_transaction) of two statements, three when some
# of its orders were claimed before, each a fixed text whatever the batch's size (arrays
# in, one prepared statement each):
# - _CLAIM_ORDERS_LOCKING_STOCK claims every order of the batch, ascending, as claim_order
#   does one: INSERT ... ON CONFLICT DO NOTHING is the per-order lock (a concurrent claim
#   of the same order waits for this transaction, then backs off). unnest keeps the
#   array's order, so the rows are inserted, and their index entries locked, in ascending
#   order id in every batch: two batches claiming the same orders queue, they never
#   deadlock. Then it locks the products (FOR NO KEY UPDATE, as lock_stock_levels) and
#   reads their stock. The uncorrelated `(SELECT count(*) FROM claim) >= 0` is a one-time
#   filter evaluated before the products are scanned, so the claims come first, and
#   LockRows sits above the sort, so the rows are locked in ascending id: the lock order
#   of every other writer. The batch is then decided in Python from those levels, which
#   nobody else can change before COMMIT.
# - _GET_RESERVATIONS reads the earlier outcome of the orders found claimed. It must be a
#   statement of its own: a claim that waited for a concurrent one sees its row committed
#   only from the next statement's snapshot on (READ COMMITTED).
# - _RECORD_BATCH writes the decision in one statement: the reserved lines, the rejected
#   with their shortfalls, the withdrawn claims (unknown products) deleted, and one
#   decrement per product, still conditional (`stock_level >= taken`) so that a wrong
#   decision could never oversell: the caller checks every product matched.
_CLAIM_ORDERS_LOCKING_STOCK = text(
    """
    WITH claim AS (
        INSERT INTO inventory.reservations (order_id, status)
        SELECT claim.order_id, 'RESERVED'
        FROM unnest(CAST(:order_ids AS text[])) AS claim (order_id)
        ON CONFLICT (order_id) DO NOTHING
        RETURNING order_id
    ), locked AS (
        SELECT id, stock_level FROM inventory.products
        WHERE id = ANY (CAST(:product_ids AS bigint[]))
          AND (SELECT count(*) FROM claim) >= 0
        ORDER BY id
        FOR NO KEY UPDATE
    )
    SELECT ARRAY(SELECT order_id FROM claim) AS claimed,
           ARRAY(SELECT id FROM locked) AS product_ids,
           ARRAY(SELECT stock_level FROM locked) AS stock_levels
    """
)

_GET_RESERVATIONS = text(
    """
    SELECT r.order_id, r.status, CAST(r.shortfalls AS text) AS shortfalls,
           ARRAY(SELECT i.product_id FROM inventory.reservation_items AS i
                 WHERE i.order_id = r.order_id ORDER BY i.product_id) AS product_ids,
           ARRAY(SELECT i.quantity FROM inventory.reservation_items AS i
                 WHERE i.order_id = r.order_id ORDER BY i.product_id) AS quantities
    FROM inventory.reservations AS r
    WHERE r.order_id = ANY (CAST(:order_ids AS text[]))
    """
)

_RECORD_BATCH = text(
    """
    WITH added AS (
        INSERT INTO inventory.reservation_items (order_id, product_id, quantity)
        SELECT line.order_id, line.product_id, line.quantity
        FROM unnest(
            CAST(:line_order_ids AS text[]),
            CAST(:line_product_ids AS bigint[]),
            CAST(:line_quantities AS bigint[])
        ) AS line (order_id, product_id, quantity)
    ), rejected AS (
        UPDATE inventory.reservations AS r
        SET status = 'REJECTED', shortfalls = CAST(refusal.shortfalls AS jsonb),
            update_time = now()
        FROM unnest(CAST(:rejected_order_ids AS text[]), CAST(:shortfalls AS text[]))
            AS refusal (order_id, shortfalls)
        WHERE r.order_id = refusal.order_id
    ), withdrawn AS (
        DELETE FROM inventory.reservations
        WHERE order_id = ANY (CAST(:withdrawn_order_ids AS text[]))
    ), taken AS (
        UPDATE inventory.products AS p
        SET stock_level = p.stock_level - take.quantity
        FROM unnest(CAST(:taken_product_ids AS bigint[]), CAST(:taken_quantities AS bigint[]))
            AS take (product_id, quantity)
        WHERE p.id = take.product_id AND p.stock_level >= take.quantity
        RETURNING p.id
    )
    SELECT count(*) AS products_taken FROM taken
    """
)


class BatchDecrementMissed(Exception):
    """A product's locked stock did not cover what the batch decided to take from it: a
    bug, never a shortfall (those are decided before). Raising rolls the batch back."""


class SqlReservationRepository:
    def __init__(self, db: StatementExecutor) -> None:
        self._db = db

    async def reserve_lines(self, order_id: str, lines: Sequence[ReservationLine]) -> bool | None:
        assert len(lines) <= MAX_LINES_IN_ONE_STATEMENT, "more lines than one statement takes"
        params: dict[str, object] = {
            "order_id": order_id,
            "product_ids": [line.product_id for line in lines],
            "quantities": [line.quantity for line in lines],
        }
        for k, line in enumerate(lines):
            params[f"p{k}"] = line.product_id
            params[f"q{k}"] = line.quantity
        try:
            rows = await self._db.fetch_hot(_reserve_lines_statement(len(lines)), params)
        except (asyncpg.PostgresError, DBAPIError) as exc:
            if _refused_on_purpose(exc):
                return False
            raise
        return True if rows[0]["taken"] else None

    async def claim_order(self, order_id: str, status: ReservationStatus) -> bool:
        # INSERT ... ON CONFLICT DO NOTHING is the per-order lock: a concurrent claim of
        # the same order waits until this transaction ends, then sees the row and backs off.
        statement = (
            insert(reservations)
            .values(order_id=order_id, status=status.value)
            .on_conflict_do_nothing(index_elements=[reservations.c.order_id])
            .returning(reservations.c.order_id)
        )
        return (await self._db.execute(statement)).first() is not None

    async def claim_order_with_lines(
        self, order_id: str, lines: Sequence[ReservationLine]
    ) -> set[int] | None:
        row = (
            await self._db.execute(
                _CLAIM_WITH_LINES,
                {
                    "order_id": order_id,
                    "product_ids": [line.product_id for line in lines],
                    "quantities": [line.quantity for line in lines],
                },
            )
        ).one()
        return set(row.product_ids) if row.claimed else None

    async def claim_orders_locking_stock(
        self, order_ids: Sequence[str], product_ids: Sequence[int]
    ) -> tuple[set[str], dict[int, int]]:
        assert list(order_ids) == sorted(set(order_ids)), "order ids ascending and distinct"
        [row] = await self._db.fetch_hot(
            _CLAIM_ORDERS_LOCKING_STOCK,
            {"order_ids": list(order_ids), "product_ids": list(product_ids)},
        )
        stock = dict(zip(row["product_ids"], row["stock_levels"], strict=True))
        return set(row["claimed"]), stock

    async def get_reservations(self, order_ids: Sequence[str]) -> dict[str, Reservation]:
        rows = await self._db.fetch_hot(_GET_RESERVATIONS, {"order_ids": list(order_ids)})
        return {
            row["order_id"]: Reservation(
                row["order_id"],
                ReservationStatus(row["status"]),
                tuple(
                    ReservationLine(product_id, quantity)
                    for product_id, quantity in zip(
                        row["product_ids"], row["quantities"], strict=True
                    )
                ),
                _shortfalls(json.loads(row["shortfalls"]) if row["shortfalls"] else []),
            )
            for row in rows
        }

    async def record_batch(self, decisions: BatchDecisions) -> None:
        lines = [(r.order_id, line) for r in decisions.reserved for line in r.lines]
        taken = sorted(decisions.taken.items())
        [row] = await self._db.fetch_hot(
            _RECORD_BATCH,
            {
                "line_order_ids": [order_id for order_id, _ in lines],
                "line_product_ids": [line.product_id for _, line in lines],
                "line_quantities": [line.quantity for _, line in lines],
                "rejected_order_ids": [r.order_id for r in decisions.rejected],
                "shortfalls": [
                    json.dumps(_shortfall_documents(r.shortfalls)) for r in decisions.rejected
                ],
                "withdrawn_order_ids": list(decisions.withdrawn),
                "taken_product_ids": [product_id for product_id, _ in taken],
                "taken_quantities": [quantity for _, quantity in taken],
            },
        )
        if row["products_taken"] != len(taken):
            raise BatchDecrementMissed(
                f"{len(taken)} decrements decided, {row['products_taken']} applied"
            )

    async def get_reservation(
        self, order_id: str, *, for_update: bool = False
    ) -> Reservation | None:
        statement = select(reservations).where(reservations.c.order_id == order_id)
        if for_update:
            statement = statement.with_for_update()
        row = (await self._db.execute(statement)).first()
        if row is None:
            return None
        lines = await self._lines(order_id)
        return Reservation(
            row.order_id, ReservationStatus(row.status), lines, _shortfalls(row.shortfalls or [])
        )

    async def add_lines(self, order_id: str, lines: Sequence[ReservationLine]) -> None:
        await self._db.execute(
            insert(reservation_items),
            [
                {"order_id": order_id, "product_id": line.product_id, "quantity": line.quantity}
                for line in lines
            ],
        )

    async def mark_rejected(self, order_id: str, shortfalls: Sequence[Shortfall]) -> None:
        await self._set_status(
            order_id, ReservationStatus.REJECTED, shortfalls=_shortfall_documents(shortfalls)
        )

    async def mark_released(self, order_id: str) -> None:
        await self._set_status(order_id, ReservationStatus.RELEASED)

    async def _set_status(self, order_id: str, status: ReservationStatus, **values: object) -> None:
        await self._db.execute(
            update(reservations)
            .where(reservations.c.order_id == order_id)
            .values(status=status.value, update_time=func.now(), **values)
        )

    async def _lines(self, order_id: str) -> tuple[ReservationLine, ...]:
        statement = (
            select(reservation_items.c.product_id, reservation_items.c.quantity)
            .where(reservation_items.c.order_id == order_id)
            .order_by(reservation_items.c.product_id)
        )
        rows = await self._db.execute(statement)
        return tuple(ReservationLine(row.product_id, row.quantity) for row in rows)


def _shortfall_documents(shortfalls: Sequence[Shortfall]) -> list[dict[str, int]]:
    """As the shortfalls column holds them."""
    return [
        {"product_id": s.product_id, "requested": s.requested, "available": s.available}
        for s in shortfalls
    ]


def _shortfalls(documents: list[dict[str, int]]) -> tuple[Shortfall, ...]:
    return tuple(Shortfall(d["product_id"], d["requested"], d["available"]) for d in documents)


def _refused_on_purpose(exc: BaseException) -> bool:
    """Whether the reservation statement aborted because a decrement missed or a product
    does not exist, rather than for a reason the caller must hear about."""
    error = _driver_error(exc)
    if error is None:
        return False
    if error.sqlstate == _A_DECREMENT_MISSED:
        return True
    return getattr(error, "constraint_name", None) in (_STOCK_NOT_NEGATIVE, _LINE_PRODUCT_EXISTS)


def _driver_error(exc: BaseException | None) -> asyncpg.PostgresError | None:
    """asyncpg's error, raised as is (statement pool) or wrapped twice by SQLAlchemy
    (its DBAPIError.orig is the dialect's adapted error, whose .orig is asyncpg's)."""
    while exc is not None and not isinstance(exc, asyncpg.PostgresError):
        exc = getattr(exc, "orig", None)
    return exc
