"""Rows of orders.orders (and their items) read back as domain orders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.lifecycle.status import OrderStatus
from services.orders.domain.model import HistoryEntry, Order, OrderLine


def order_from_row(row: Mapping[str, Any], lines: list[OrderLine]) -> Order:
    return Order(
        order_id=row["order_id"],
        customer_name=row["customer_name"],
        status=OrderStatus(row["status"]),
        items=tuple(lines),
        status_note=row["status_note"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        next_step_due_time=row["next_step_due_time"],
        customer_id=row["customer_id"],
    )


def order_from_row_with_items(row: Mapping[str, Any]) -> Order:
    """An order row that carries its items as the arrays product_ids, quantities and
    unit_prices, in line order (the transition statements return them so)."""
    lines = [
        OrderLine(product_id, quantity, unit_price)
        for product_id, quantity, unit_price in zip(
            row["product_ids"] or (), row["quantities"] or (), row["unit_prices"] or (), strict=True
        )
    ]
    return order_from_row(row, lines)


def history_entry_from_row(row: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        entry_id=row["id"],
        from_status=OrderStatus(row["from_status"]) if row["from_status"] else None,
        to_status=OrderStatus(row["to_status"]),
        time=row["time"],
        note=row["note"],
        next_step_due_time=row["next_step_due_time"],
        actor=row["actor"],
    )
