"""WatchOrder: the order's current state, then every transition, until a terminal state.

Wake-ups come from the change feed (PostgreSQL LISTEN/NOTIFY); what changed comes from the
order's history, read after the last entry already shown. Reading history rather than the
order row means that several transitions in quick succession, which may arrive as a single
wake-up, are still each shown, in order and once. Subscribing before the first read leaves
no window in which a change could be missed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from services.common.lifecycle.status import is_terminal
from services.orders.domain.callers import Caller
from services.orders.domain.errors import OrderNotFound, WatchInterrupted
from services.orders.domain.model import HistoryEntry, Order
from services.orders.service_layer.dependencies import OrderServiceDeps


async def watch_order(
    order_id: uuid.UUID, caller: Caller, deps: OrderServiceDeps
) -> AsyncIterator[Order]:
    deps.metrics.watch_opened()
    try:
        async with deps.changes.subscribe(order_id) as changes:
            # Reads without BEGIN/COMMIT: the order row and its last entry id come from one
            # statement, items never change, and history is append-only. An order that passed
            # this visibility check stays its customer's, so the later reads need none.
            found = await deps.uow.autocommit(
                lambda repo: repo.get_with_last_entry_id(order_id, visible_to=caller.visible_to),
                name="watch_order",
            )
            if found is None:
                raise OrderNotFound(str(order_id))
            order, last_entry_id = found
            yield order
            while not is_terminal(order.status):
                if not await changes.wait():
                    raise WatchInterrupted()
                for entry in await _entries_after(order_id, last_entry_id, deps):
                    order = order.after(entry)
                    last_entry_id = entry.entry_id
                    yield order
    finally:
        deps.metrics.watch_closed()


async def _entries_after(
    order_id: uuid.UUID, last_entry_id: int, deps: OrderServiceDeps
) -> list[HistoryEntry]:
    return await deps.uow.autocommit(
        lambda repo: repo.history(order_id, after_entry_id=last_entry_id), name="watch_order"
    )
