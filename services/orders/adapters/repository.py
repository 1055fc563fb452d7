"""Orders in PostgreSQL: SqlOrderRepository runs every statement in the caller's
transaction, AutocommitOrderRepository each as its own. The statements that matter for
correctness live, with why they are safe, in intake_statements, transition_statements and
stale_claim_statements; order_rows turns rows into domain objects."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from functools import cache
from typing import Any

from sqlalchemy import CursorResult, Executable, Row, Select, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import TextClause

from services.common.database.statements import RawStatement, StatementPool
from services.common.lifecycle.status import FIRST_STATUS, OrderStatus
from services.orders.adapters.intake_statements import ADD_NEW_ORDERS, FIRST_NOTE
from services.orders.adapters.order_rows import (
    history_entry_from_row,
    order_from_row,
    order_from_row_with_items,
)
from services.orders.adapters.stale_claim_statements import CLAIM_STALE
from services.orders.adapters.tables import CHANGE_CHANNEL, order_history, order_items, orders
from services.orders.adapters.transition_statements import (
    ADVANCE_FROM_ONE_STATUS,
    CHANGE_FROM_ANY_STATUS,
    RECORD_TRANSITION,
)
from services.orders.domain.model import (
    HistoryEntry,
    NewOrder,
    Order,
    OrderFilters,
    OrderLine,
    PageKey,
    RequestKey,
    StaleOrder,
    StatusChange,
    StoredRequest,
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

    async def stored_requests(self, keys: Collection[RequestKey]) -> dict[RequestKey, StoredRequest]:
        wanted = [(key.customer_id, key.request_id) for key in keys]
        rows = (
            await self._execute(
                select(orders).where(tuple_(orders.c.customer_id, orders.c.request_id).in_(wanted))
            )
        ).all()
        found = await self._with_items(rows)
        return {
            RequestKey(row.customer_id, row.request_id): StoredRequest(
                found[row.order_id], row.request_fingerprint
            )
            for row in rows
        }

    async def add_new_orders(
        self, new_orders: Sequence[NewOrder], first_step_due_in_s: float, actor: str
    ) -> dict[uuid.UUID, Order]:
        # Sorted by request key, so concurrent batches wait for each other's unique keys in
        # one order rather than deadlock.
        ordered = sorted(
            new_orders,
            key=lambda n: (n.request_id is None, n.customer_id, n.request_id or ""),
        )
        lines = [(n.order_id, number, line) for n in ordered for number, line in enumerate(n.lines)]
        rows = await self._fetch_hot(
            ADD_NEW_ORDERS,
            {
                "order_ids": [n.order_id for n in ordered],
                "customer_ids": [n.customer_id for n in ordered],
                "customer_names": [n.customer_name for n in ordered],
                "request_ids": [n.request_id for n in ordered],
                "fingerprints": [n.request_fingerprint for n in ordered],
                "due_in_s": float(first_step_due_in_s),
                "item_order_ids": [order_id for order_id, _, _ in lines],
                "line_numbers": [number for _, number, _ in lines],
                "product_ids": [line.product_id for _, _, line in lines],
                "quantities": [line.quantity for _, _, line in lines],
                "unit_prices": [line.unit_price for _, _, line in lines],
                "actor": actor,
            },
        )
        stored = {row["order_id"]: (row["create_time"], row["next_step_due_time"]) for row in rows}
        created: dict[uuid.UUID, Order] = {}
        for n in ordered:
            if n.order_id in stored:
                create_time, due = stored[n.order_id]
                created[n.order_id] = Order(
                    n.order_id, n.customer_name, FIRST_STATUS, n.lines, FIRST_NOTE,
                    create_time, create_time, due, n.customer_id,
                )
        return created

    async def get(self, order_id: uuid.UUID, visible_to: str | None = None) -> Order | None:
        query = _visible(select(orders).where(orders.c.order_id == order_id), visible_to)
        rows = (await self._execute(query)).all()
        return (await self._with_items(rows)).get(order_id)

    async def page(self, filters: OrderFilters, after: PageKey | None, limit: int) -> list[Order]:
        query = select(orders)
        if filters.status is not None:
            query = query.where(orders.c.status == filters.status.value)
        if filters.customer_name is not None:
            query = query.where(orders.c.customer_name == filters.customer_name)
        if filters.customer_id is not None:
            query = query.where(orders.c.customer_id == filters.customer_id)
        if after is not None:
            query = query.where(
                tuple_(orders.c.create_time, orders.c.order_id)
                < tuple_(after.create_time, after.order_id)
            )
        query = query.order_by(orders.c.create_time.desc(), orders.c.order_id.desc()).limit(limit)
        rows = (await self._execute(query)).all()
        found = await self._with_items(rows)
        return [found[row.order_id] for row in rows]

    async def history(
        self, order_id: uuid.UUID, after_entry_id: int = 0, visible_to: str | None = None
    ) -> list[HistoryEntry]:
        query = (
            select(order_history)
            .where(order_history.c.order_id == order_id, order_history.c.id > after_entry_id)
            .order_by(order_history.c.id)
        )
        if visible_to is not None:
            owned = select(orders.c.order_id).where(
                orders.c.order_id == order_id, orders.c.customer_id == visible_to
            )
            query = query.where(order_history.c.order_id.in_(owned))
        rows = await self._execute(query)
        return [history_entry_from_row(row._mapping) for row in rows]

    async def get_with_last_entry_id(
        self, order_id: uuid.UUID, visible_to: str | None = None
    ) -> tuple[Order, int] | None:
        # One statement, one snapshot: the order row and its latest entry agree.
        last_entry_id = (
            select(func.max(order_history.c.id))
            .where(order_history.c.order_id == orders.c.order_id)
            .scalar_subquery()
        )
        row = (
            await self._execute(
                _visible(
                    select(orders, last_entry_id.label("last_entry_id")).where(
                        orders.c.order_id == order_id
                    ),
                    visible_to,
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
        actor: str,
        release_stock: bool = False,
        visible_to: str | None = None,
    ) -> StatusChange | None:
        params: dict[str, Any] = {
            "order_id": order_id,
            "to_status": to_status.value,
            "note": note,
            "due_in_s": next_step_due_in_s,
            "release_stock": release_stock,
            "actor": actor,
        }
        if len(from_statuses) == 1 and visible_to is None:
            (from_status,) = from_statuses
            rows = await self._fetch_hot(
                ADVANCE_FROM_ONE_STATUS,
                {**params, "from_status": from_status.value, "channel": CHANGE_CHANNEL},
            )
            return StatusChange(order_from_row_with_items(rows[0]), from_status) if rows else None
        row = (
            await self._execute(
                CHANGE_FROM_ANY_STATUS,
                {
                    **params, "from_statuses": [s.value for s in from_statuses],
                    "customer_id": visible_to,
                },
            )
        ).one_or_none()
        if row is None:
            return None
        row = row._mapping
        recorded = await self._execute(
            RECORD_TRANSITION,
            {
                "order_id": order_id,
                "to_status": to_status.value,
                "time": row["update_time"],
                "note": note,
                "next_step_due_time": row["next_step_due_time"],
                "channel": CHANGE_CHANNEL,
                "order_id_text": str(order_id),
                "actor": actor,
            },
        )
        from_status = OrderStatus(recorded.scalar_one())
        return StatusChange(order_from_row_with_items(row), from_status)

    async def current_status(
        self, order_id: uuid.UUID, visible_to: str | None = None
    ) -> OrderStatus | None:
        query = _visible(select(orders.c.status).where(orders.c.order_id == order_id), visible_to)
        status = (await self._execute(query)).scalar_one_or_none()
        return OrderStatus(status) if status else None

    async def claim_stale(self, limit: int, stale_after_s: float, lease_s: float) -> list[StaleOrder]:
        rows = (
            await self._execute(
                CLAIM_STALE,
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

    async def count_by_status(self) -> dict[OrderStatus, int]:
        # One GROUP BY that ix_orders_status_create_time (status first) serves as an
        # index-only scan in status order: it reads every index entry, a few ms per 100k
        # orders, but no heap page once vacuum has marked them visible, and needs no index of
        # its own. Callers: the orders-by-status gauge every few seconds, and SummarizeOrders
        # (admins only, the console's overview).
        rows = await self._execute(
            select(orders.c.status, func.count()).group_by(orders.c.status)
        )
        counts = dict.fromkeys(OrderStatus, 0)
        for status, count in rows:
            counts[OrderStatus(status)] = count
        return counts

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
        return {row.order_id: order_from_row(row._mapping, lines[row.order_id]) for row in rows}


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


def _visible(query: Select[Any], visible_to: str | None) -> Select[Any]:
    """Only the orders of customer `visible_to` (None: anyone's). Another customer's order
    then reads exactly like a missing one: the same statement finding no row."""
    return query if visible_to is None else query.where(orders.c.customer_id == visible_to)


@cache
def _compiled(statement: TextClause) -> RawStatement:
    return RawStatement.compile(statement)
