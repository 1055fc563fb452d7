"""Scratch copies of the service tables for the raw limits: same columns, indexes,
constraints and foreign keys, in their own schema, so raw rows never mix with the
services' data. Dropped when the benchmark ends."""

from __future__ import annotations

from services.devtools.stores import autocommit_cursor

SCHEMA = "fulfillment_bench_raw"


def create_raw_tables(database_url: str) -> None:
    with autocommit_cursor(database_url) as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cur.execute(f"CREATE SCHEMA {SCHEMA}")
        for table in ("orders.orders", "orders.order_items", "orders.order_history", "inventory.products"):
            name = table.split(".")[1]
            cur.execute(f"CREATE TABLE {SCHEMA}.{name} (LIKE {table} INCLUDING ALL)")
        for child in ("order_items", "order_history"):
            cur.execute(
                f"ALTER TABLE {SCHEMA}.{child} ADD FOREIGN KEY (order_id) "
                f"REFERENCES {SCHEMA}.orders (order_id)"
            )


def drop_raw_tables(database_url: str) -> None:
    with autocommit_cursor(database_url) as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
