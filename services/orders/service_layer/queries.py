"""Reading orders: one order, pages of orders, an order's history, counts by status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.common.lifecycle.status import OrderStatus
from services.common.pagination import PageTokens, resolve_page_size
from services.orders.domain.callers import Caller
from services.orders.domain.errors import OrderNotFound
from services.orders.domain.model import HistoryEntry, Order, OrderFilters, PageKey
from services.orders.service_layer.dependencies import OrderServiceDeps
from services.orders.service_layer.status_counts import count_orders_by_status

ORDERS_PAGE_TOKEN_KIND = "orders"


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    # Empty when this page is the last.
    next_page_token: str


async def get_order(order_id: uuid.UUID, caller: Caller, deps: OrderServiceDeps) -> Order:
    # Reads only, and an order's items never change after the order row is read. Another
    # customer's order is not found by the same statement, so it answers like a missing one.
    order = await deps.uow.autocommit(
        lambda repo: repo.get(order_id, visible_to=caller.visible_to), name="get_order"
    )
    if order is None:
        raise OrderNotFound(str(order_id))
    return order


async def list_orders(
    filters: OrderFilters, page_size: int, page_token: str, caller: Caller, deps: OrderServiceDeps
) -> OrderPage:
    """Newest first. Keyset pagination on (create_time, order_id): an order created while a
    caller pages sorts before the pages already read, so no order is skipped or repeated.
    A customer lists its own orders only."""
    filters = replace(filters, customer_id=caller.customer_to_list(filters.customer_id or ""))
    limit = resolve_page_size(page_size)
    page_tokens = await deps.page_tokens.tokens()
    after = _page_key(page_tokens, page_token, filters)
    # One row more than the page tells whether another page exists without a count. Read
    # without BEGIN/COMMIT like every read here: the rows come from one statement and an
    # order's items never change after it is created.
    rows = await deps.uow.autocommit(
        lambda repo: repo.page(filters, after, limit + 1), name="list_orders"
    )
    orders = rows[:limit]
    next_token = ""
    if len(rows) > limit:
        last = orders[-1]
        next_token = page_tokens.encode(
            ORDERS_PAGE_TOKEN_KIND,
            [last.create_time.isoformat(), str(last.order_id)],
            filters.as_token_filters(),
        )
    return OrderPage(orders, next_token)


async def order_history(
    order_id: uuid.UUID, caller: Caller, deps: OrderServiceDeps
) -> list[HistoryEntry]:
    # An order is created with its first history entry in the same statement, so an order
    # without history does not exist (or is another customer's).
    entries = await deps.uow.autocommit(
        lambda repo: repo.history(order_id, visible_to=caller.visible_to), name="order_history"
    )
    if not entries:
        raise OrderNotFound(str(order_id))
    return entries


async def summarize_orders(caller: Caller, deps: OrderServiceDeps) -> dict[OrderStatus, int]:
    """Every status with its count (0 included), from one GROUP BY over the status index,
    never a walk over pages of orders. Admins only: it counts every customer's orders."""
    caller.require_admin("summarize orders")
    return await count_orders_by_status(deps.uow)


def _page_key(page_tokens: PageTokens, page_token: str, filters: OrderFilters) -> PageKey | None:
    return page_tokens.decode(
        page_token, ORDERS_PAGE_TOKEN_KIND, filters.as_token_filters(), parse=_parse_page_key
    )


def _parse_page_key(last_key: list[Any]) -> PageKey:
    create_time_text, order_id_text = last_key
    if type(create_time_text) is not str or type(order_id_text) is not str:
        raise ValueError("a page key is two strings")
    create_time = datetime.fromisoformat(create_time_text)
    if create_time.tzinfo is None:
        raise ValueError("naive time")
    return PageKey(create_time, uuid.UUID(order_id_text))
