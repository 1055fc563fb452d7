"""Orders in PostgreSQL. Every method runs inside the caller's transaction (`conn`)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import CursorResult, Executable, Row, bindparam, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import TextClause

from services.common.database.statements import RawStatement, StatementPool
from services.orders.adapters.tables import CHANGE_CHANNEL, order_history, order_items, orders
from services.orders.domain.lifecycle import FIRST_STATUS, NON_TERMINAL, OrderStatus
from services.orders.domain.model import (
    HistoryEntry,
    NewOrder,
    Order,
    OrderFilters,
    OrderLine,
    PageKey,
    StaleOrder,
    StoredRequest,
)

FIRST_NOTE = "order received"

_ACTIVE_STATUSES_SQL = ", ".join(f"'{status.value}'" for status in NON_TERMINAL)

# The compare-and-set at the heart of every transition. The WHERE clause is re-checked
# against the latest committed version of the row once its lock is ours, so of two racing
# transitions from the same status exactly one matches; the other sees zero rows.
# clock_timestamp(), not now(): a transaction that waited for the lock must not record a
# time earlier than the transition it waited for. The order's items never change, so
# reading them in the same statement is safe whatever its snapshot.
_SET_STATUS = """
    UPDATE orders.orders
    SET status = :to_status,
        status_note = :note,
        update_time = clock_timestamp(),
        next_step_due_time = clock_timestamp() + make_interval(secs => :due_in_s),
        stale_claims = 0,
        stock_release_pending = stock_release_pending OR :release_stock
    WHERE order_id = :order_id AND status = {from_condition}
    RETURNING *
"""
_CHANGED_ORDER_WITH_ITEMS = """
    SELECT changed.*, items.product_ids, items.quantities, items.unit_prices{notified}
    FROM changed
    CROSS JOIN LATERAL (
        SELECT array_agg(i.product_id ORDER BY i.line_number) AS product_ids,
               array_agg(i.quantity ORDER BY i.line_number) AS quantities,
               array_agg(i.unit_price ORDER BY i.line_number) AS unit_prices
        FROM orders.order_items AS i
        WHERE i.order_id = changed.order_id
    ) AS items
"""

# A transition from one known status is a single statement: the CAS, its history row and
# the announcement. from_status is the status the CAS matched, which is the previous
# entry's to_status (every transition writes both). pg_notify is delivered to listeners
# only when the transaction commits, and is called only when a row changed.
_ADVANCE_FROM_ONE_STATUS = text(
    "WITH changed AS ("
    + _SET_STATUS.format(from_condition=":from_status")
    + """), entry AS (
        INSERT INTO orders.order_history
            (order_id, from_status, to_status, time, note, next_step_due_time)
        SELECT order_id, :from_status, status, update_time, status_note, next_step_due_time
        FROM changed
    )"""
    + _CHANGED_ORDER_WITH_ITEMS.format(
        notified=", pg_notify(:channel, CAST(changed.order_id AS text)) AS notified"
    )
)

# From any of several statuses (a cancel), which one matched is not known to the UPDATE
# (RETURNING shows only the new row), so its history row is written by the next statement.
_CHANGE_FROM_ANY_STATUS = text(
    "WITH changed AS ("
    + _SET_STATUS.format(from_condition="ANY(:from_statuses)")
    + ")"
    + _CHANGED_ORDER_WITH_ITEMS.format(notified="")
).bindparams(bindparam("from_statuses", expanding=False))

# A separate statement from the UPDATE on purpose: it reads with a snapshot taken after we
# hold the order's row lock, so it sees the history row of the transition we may have
# waited for, and from_status always equals the previous entry's to_status.
_RECORD_TRANSITION = text(
    """
    WITH entry AS (
        INSERT INTO orders.order_history
            (order_id, from_status, to_status, time, note, next_step_due_time)
        SELECT :order_id,
               (SELECT h.to_status FROM orders.order_history AS h
                WHERE h.order_id = :order_id ORDER BY h.id DESC LIMIT 1),
               :to_status, :time, :note, :next_step_due_time
    )
    SELECT pg_notify(:channel, :order_id_text)
    """
)

# A new order with its items and its first history row in one statement. A request_id that
# another order holds (committed, or committed while we waited for its transaction) skips
# the order instead of failing the batch, and with it its items and history row, which
# join on the orders actually inserted; the caller then reads the order that holds it.
# The foreign keys of items and history are checked at the end of the statement, when the
# orders are there.
_ADD_NEW_ORDERS = text(
    f"""
    WITH new_orders AS (
        INSERT INTO orders.orders
            (order_id, customer_name, status, status_note, create_time, update_time,
             next_step_due_time, stale_claims, stock_release_pending, request_id,
             request_fingerprint)
        SELECT o.order_id, o.customer_name, '{FIRST_STATUS.value}', '{FIRST_NOTE}', now(), now(),
               now() + make_interval(secs => :due_in_s), 0, false, o.request_id, o.fingerprint
        FROM unnest(CAST(:order_ids AS uuid[]), CAST(:customer_names AS text[]),
                    CAST(:request_ids AS text[]), CAST(:fingerprints AS text[]))
             WITH ORDINALITY AS o(order_id, customer_name, request_id, fingerprint, position)
        ORDER BY o.position
        ON CONFLICT (request_id) DO NOTHING
        RETURNING order_id, create_time, next_step_due_time
    ), new_items AS (
        INSERT INTO orders.order_items (order_id, line_number, product_id, quantity, unit_price)
        SELECT i.order_id, i.line_number, i.product_id, i.quantity, i.unit_price
        FROM unnest(CAST(:item_order_ids AS uuid[]), CAST(:line_numbers AS smallint[]),
                    CAST(:product_ids AS bigint[]), CAST(:quantities AS integer[]),
                    CAST(:unit_prices AS numeric[]))
             AS i(order_id, line_number, product_id, quantity, unit_price)
        JOIN new_orders USING (order_id)
    ), first_entries AS (
        INSERT INTO orders.order_history
            (order_id, from_status, to_status, time, note, next_step_due_time)
        SELECT order_id, NULL, '{FIRST_STATUS.value}', create_time, '{FIRST_NOTE}',
               next_step_due_time
        FROM new_orders
    )
    SELECT order_id, create_time, next_step_due_time FROM new_orders
    """
)

# Two monitors never claim the same order: SKIP LOCKED passes over rows another claimer
# has locked instead of waiting for them, and a claimed row's due time is pushed past
# now() before its lock is released at commit, so a later claimer, re-checking the WHERE
# clause on the committed row, no longer finds it overdue. The status list is spelled out
# so the planner can use the partial index on next_step_due_time.
_CLAIM_STALE = text(
    f"""
    UPDATE orders.orders AS o
    SET next_step_due_time = clock_timestamp() + make_interval(secs => :lease_s),
        stale_claims = o.stale_claims + 1
    WHERE o.order_id IN (
        SELECT order_id FROM orders.orders
        WHERE status IN ({_ACTIVE_STATUSES_SQL})
          AND next_step_due_time < now() - make_interval(secs => :stale_after_s)
        ORDER BY next_step_due_time
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING o.*
    """
)


class SqlOrderRepository:
    """Every method on `conn`, the caller's transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _connection(self) -> AsyncConnection:
        return self._conn

    async def _execute(self, statement: Executable, params: Any = None) -> CursorResult[Any]:
        return await (await self._connection()).execute(statement, params)

    async def _fetch_hot(self, statement: TextClause, params: dict[str, Any]) -> Sequence[Any]:
        """Rows of one of the statements every order runs; indexable by position and name."""
        return [row._mapping for row in await self._execute(statement, params)]

    async def stored_requests(self, request_ids: Collection[str]) -> dict[str, StoredRequest]:
        rows = (
            await self._execute(select(orders).where(orders.c.request_id.in_(request_ids)))
        ).all()
        found = await self._with_items(rows)
        return {
            row.request_id: StoredRequest(found[row.order_id], row.request_fingerprint)
            for row in rows
        }

    async def add_new_orders(
        self, new_orders: Sequence[NewOrder], first_step_due_in_s: float
    ) -> dict[uuid.UUID, Order]:
        # Sorted by request_id, so concurrent batches wait for each other's unique keys in
        # one order rather than deadlock.
        ordered = sorted(new_orders, key=lambda n: (n.request_id is None, n.request_id or ""))
        lines = [(n.order_id, number, line) for n in ordered for number, line in enumerate(n.lines)]
        rows = await self._fetch_hot(
            _ADD_NEW_ORDERS,
            {
                "order_ids": [n.order_id for n in ordered],
                "customer_names": [n.customer_name for n in ordered],
                "request_ids": [n.request_id for n in ordered],
                "fingerprints": [n.request_fingerprint for n in ordered],
                "due_in_s": float(first_step_due_in_s),
                "item_order_ids": [order_id for order_id, _, _ in lines],
                "line_numbers": [number for _, number, _ in lines],
                "product_ids": [line.product_id for _, _, line in lines],
                "quantities": [line.quantity for _, _, line in lines],
                "unit_prices": [line.unit_price for _, _, line in lines],
            },
        )
        stored = {row["order_id"]: (row["create_time"], row["next_step_due_time"]) for row in rows}
        created: dict[uuid.UUID, Order] = {}
        for n in ordered:
            if n.order_id in stored:
                create_time, due = stored[n.order_id]
                created[n.order_id] = Order(
                    n.order_id, n.customer_name, FIRST_STATUS, n.lines, FIRST_NOTE,
                    create_time, create_time, due,
                )
        return created

    async def get(self, order_id: uuid.UUID) -> Order | None:
        rows = (await self._execute(select(orders).where(orders.c.order_id == order_id))).all()
        return (await self._with_items(rows)).get(order_id)

    async def page(self, filters: OrderFilters, after: PageKey | None, limit: int) -> list[Order]:
        query = select(orders)
        if filters.status is not None:
            query = query.where(orders.c.status == filters.status.value)
        if filters.customer_name is not None:
            query = query.where(orders.c.customer_name == filters.customer_name)
        if after is not None:
            query = query.where(
                tuple_(orders.c.create_time, orders.c.order_id)
                < tuple_(after.create_time, after.order_id)
            )
        query = query.order_by(orders.c.create_time.desc(), orders.c.order_id.desc()).limit(limit)
        rows = (await self._execute(query)).all()
        found = await self._with_items(rows)
        return [found[row.order_id] for row in rows]

    async def history(self, order_id: uuid.UUID, after_entry_id: int = 0) -> list[HistoryEntry]:
        rows = await self._execute(
            select(order_history)
            .where(order_history.c.order_id == order_id, order_history.c.id > after_entry_id)
            .order_by(order_history.c.id)
        )
        return [
            HistoryEntry(
                entry_id=row.id,
                from_status=OrderStatus(row.from_status) if row.from_status else None,
                to_status=OrderStatus(row.to_status),
                time=row.time,
                note=row.note,
                next_step_due_time=row.next_step_due_time,
            )
            for row in rows
        ]

    async def get_with_last_entry_id(self, order_id: uuid.UUID) -> tuple[Order, int] | None:
        # One statement, one snapshot: the order row and its latest entry agree.
        last_entry_id = (
            select(func.max(order_history.c.id))
            .where(order_history.c.order_id == orders.c.order_id)
            .scalar_subquery()
        )
        row = (
            await self._execute(
                select(orders, last_entry_id.label("last_entry_id")).where(
                    orders.c.order_id == order_id
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return (await self._with_items([row]))[order_id], row.last_entry_id

    async def change_status(
        self,
        order_id: uuid.UUID,
        from_statuses: Collection[OrderStatus],
        to_status: OrderStatus,
        note: str,
        next_step_due_in_s: float | None,
        release_stock: bool = False,
    ) -> Order | None:
        params: dict[str, Any] = {
            "order_id": order_id,
            "to_status": to_status.value,
            "note": note,
            "due_in_s": next_step_due_in_s,
            "release_stock": release_stock,
        }
        if len(from_statuses) == 1:
            (from_status,) = from_statuses
            rows = await self._fetch_hot(
                _ADVANCE_FROM_ONE_STATUS,
                {**params, "from_status": from_status.value, "channel": CHANGE_CHANNEL},
            )
            return _order_with_items(rows[0]) if rows else None
        row = (
            await self._execute(
                _CHANGE_FROM_ANY_STATUS,
                {**params, "from_statuses": [s.value for s in from_statuses]},
            )
        ).one_or_none()
        if row is None:
            return None
        row = row._mapping
        await self._execute(
            _RECORD_TRANSITION,
            {
                "order_id": order_id,
                "to_status": to_status.value,
                "time": row["update_time"],
                "note": note,
                "next_step_due_time": row["next_step_due_time"],
                "channel": CHANGE_CHANNEL,
                "order_id_text": str(order_id),
            },
        )
        return _order_with_items(row)

    async def current_status(self, order_id: uuid.UUID) -> OrderStatus | None:
        status = (
            await self._execute(select(orders.c.status).where(orders.c.order_id == order_id))
        ).scalar_one_or_none()
        return OrderStatus(status) if status else None

    async def claim_stale(self, limit: int, stale_after_s: float, lease_s: float) -> list[StaleOrder]:
        rows = (
            await self._execute(
                _CLAIM_STALE,
                {"limit": limit, "stale_after_s": stale_after_s, "lease_s": lease_s},
            )
        ).all()
        found = await self._with_items(rows)
        return [StaleOrder(found[row.order_id], row.stale_claims) for row in rows]

    async def orders_awaiting_stock_release(self, limit: int) -> list[uuid.UUID]:
        ids = await self._execute(
            select(orders.c.order_id)
            .where(orders.c.stock_release_pending)
            .order_by(orders.c.update_time)
            .limit(limit)
        )
        return list(ids.scalars())

    async def mark_stock_released(self, order_id: uuid.UUID) -> None:
        await self._execute(
            update(orders)
            .where(orders.c.order_id == order_id)
            .values(stock_release_pending=False)
        )

    async def _with_items(self, rows: Sequence[Row[Any]]) -> dict[uuid.UUID, Order]:
        if not rows:
            return {}
        item_rows = await self._execute(
            select(order_items)
            .where(order_items.c.order_id.in_([row.order_id for row in rows]))
            .order_by(order_items.c.order_id, order_items.c.line_number)
        )
        lines: dict[uuid.UUID, list[OrderLine]] = defaultdict(list)
        for item in item_rows:
            lines[item.order_id].append(OrderLine(item.product_id, item.quantity, item.unit_price))
        return {row.order_id: _order(row._mapping, lines[row.order_id]) for row in rows}


def _order_with_items(row: Mapping[str, Any]) -> Order:
    lines = [
        OrderLine(product_id, quantity, unit_price)
        for product_id, quantity, unit_price in zip(
            row["product_ids"] or (), row["quantities"] or (), row["unit_prices"] or (), strict=True
        )
    ]
    return _order(row, lines)


def _order(row: Mapping[str, Any], lines: list[OrderLine]) -> Order:
    return Order(
        order_id=row["order_id"],
        customer_name=row["customer_name"],
        status=OrderStatus(row["status"]),
        items=tuple(lines),
        status_note=row["status_note"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        next_step_due_time=row["next_step_due_time"],
    )


class AutocommitOrderRepository(SqlOrderRepository):
    """Every statement its own transaction. The statements every order runs (the insert
    of new orders, a transition from one status) go through the statement pool; any other
    checks out a SQLAlchemy connection, once, when first needed (close() returns it)."""

    def __init__(self, engine: AsyncEngine, statements: StatementPool) -> None:
        self._engine = engine
        self._statements = statements
        self._lazy: AsyncConnection | None = None

    async def _connection(self) -> AsyncConnection:
        if self._lazy is None:
            self._lazy = await self._engine.connect()
        return self._lazy

    async def _fetch_hot(self, statement: TextClause, params: dict[str, Any]) -> Sequence[Any]:
        return await self._statements.fetch(_compiled(statement), params)

    async def close(self) -> None:
        if self._lazy is not None:
            await self._lazy.close()


@cache
def _compiled(statement: TextClause) -> RawStatement:
    return RawStatement.compile(statement)
