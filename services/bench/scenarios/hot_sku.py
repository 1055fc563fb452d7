"""hot-sku: many concurrent reservations of ONE product through the real path (the
internal ReserveStock RPC the lifecycle worker calls, fresh order id each), with stock
for a little less than the demand so the last ones are refused; then zero oversell and
conservation are checked. Beside it: the raw conditional UPDATE on one row of a scratch
copy of the products table, same quantities, same concurrency (asyncpg, autocommit)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc

from services.bench.clients import (
    RESERVE_STOCK,
    close_channels,
    open_channels,
    raw_calls,
    seed_products,
    stock_level,
)
from services.bench.context import ScenarioContext, ratio, target
from services.bench.raw_tables import SCHEMA, create_raw_tables, drop_raw_tables
from services.bench.stats import RunStats, closed_loop
from services.common.auth.principal import Role
from services.common.database.engines import ConnectionBudget
from services.common.proto.fulfillment.inventory.v1 import reservation_service_pb2 as reservation_pb2
from services.common.tls import channel_credentials
from services.devtools.stores import autocommit_cursor


async def run(ctx: ScenarioContext) -> dict[str, Any]:
    env, sizes = ctx.environment, ctx.sizes
    env.start_services()
    count, concurrency = sizes.hot_sku_reservations, sizes.hot_sku_concurrency
    quantities = [ctx.rng.randint(1, 3) for _ in range(count)]
    initial = sum(quantities) - sum(quantities) // 20  # the last ~5% of the demand is refused
    credentials = channel_credentials(env.settings)
    (product_id,) = await seed_products(
        env.settings.inventory_addr, f"{ctx.tag}-hot", 1, initial, credentials,
        env.bearer(Role.ADMIN),
    )
    system, reserved_units, refused = await _reserve(ctx, product_id, quantities)
    final = await stock_level(
        env.settings.inventory_addr, product_id, credentials, env.bearer(Role.ADMIN)
    )
    held = _units_held(env.inventory_database_url, product_id)
    create_raw_tables(env.database_url)
    try:
        limit = await _raw_updates(ctx, quantities, initial)
    finally:
        drop_raw_tables(env.database_url)
    share = ratio(system.throughput, limit.throughput)
    verdicts = {
        "no oversell (final stock >= 0, units reserved <= initial)": final >= 0 and reserved_units <= initial,
        "conservation (initial - reserved == final == initial - units held)": initial - reserved_units
        == final
        == initial - held,
        "no errors other than refusals for lack of stock": system.errors == 0,
    }
    return {
        "what": f"ReserveStock on one product, {count} reservations of 1-3 units, {concurrency} concurrent",
        "limit": "raw UPDATE ... SET stock_level = stock_level - q WHERE id = :id AND stock_level >= q "
        "on one row, same quantities and concurrency",
        "unit": "reservations/s",
        "rows": [
            {
                "case": f"c={concurrency}",
                "system": system.as_dict(),
                "limit": limit.as_dict(),
                "ratio": round(share, 3),
            }
        ],
        "checks": {
            "initial stock": initial,
            "units reserved": reserved_units,
            "final stock": final,
            "units held by reservations": held,
            "reservations refused for stock": refused,
        },
        "verdicts": verdicts,
        "targets": [
            target("hot-sku reservations/s", ">= 1000", system.throughput, system.throughput >= 1000, "/s"),
            # Issue 15: group commit is to beat the one-UPDATE-per-reservation limit twice over.
            target("hot-sku share of raw UPDATE", ">= 200%", share * 100, share >= 2.0, "%"),
            target("hot-sku zero oversell", "yes", float(all(verdicts.values())), all(verdicts.values())),
        ],
    }


async def _reserve(ctx: ScenarioContext, product_id: int, quantities: list[int]) -> tuple[RunStats, int, int]:
    channels = open_channels(
        ctx.environment.settings.inventory_addr, 8, channel_credentials(ctx.environment.settings)
    )
    # ReserveStock is internal: the worker calls it as a `service` caller.
    calls = raw_calls(channels, RESERVE_STOCK, ctx.environment.bearer(Role.SERVICE))
    reserved_units = refused = 0

    # Built before the clock starts, as the limit's arguments are: the load generator
    # shares the two cores with what it measures.
    requests = [
        reservation_pb2.ReserveStockRequest(
            order_id=str(uuid.uuid4()),
            items=[reservation_pb2.ReservationItem(product_id=product_id, quantity=quantity)],
        ).SerializeToString()
        for quantity in quantities
    ]

    async def reserve(index: int) -> bool:
        nonlocal reserved_units, refused
        try:
            await calls[index % len(calls)](requests[index], timeout=30)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.FAILED_PRECONDITION:
                refused += 1
                return True  # a decided reservation: refused for lack of stock
            raise
        reserved_units += quantities[index]
        return True

    task, advance = ctx.task("hot-sku: ReserveStock", total=len(quantities))
    try:
        stats = await closed_loop(
            reserve,
            concurrency=ctx.sizes.hot_sku_concurrency,
            duration_s=600,
            max_requests=len(quantities),
            on_progress=advance,
        )
    finally:
        await close_channels(channels)
    ctx.finish(task)
    return stats, reserved_units, refused


def _units_held(database_url: str, product_id: int) -> int:
    with autocommit_cursor(database_url) as cur:
        cur.execute(
            "SELECT coalesce(sum(i.quantity), 0) FROM inventory.reservation_items i "
            "JOIN inventory.reservations r USING (order_id) "
            "WHERE i.product_id = %s AND r.status = 'RESERVED'",
            (product_id,),
        )
        return int(cur.fetchone()[0])


async def _raw_updates(ctx: ScenarioContext, quantities: list[int], initial: int) -> RunStats:
    url = ctx.environment.database_url
    setup = await asyncpg.connect(url)
    try:
        product_id = await setup.fetchval(
            f"INSERT INTO {SCHEMA}.products (sku, name, description, price, stock_level) "
            "VALUES ('raw-hot', 'raw', '', 1, $1) RETURNING id",
            initial,
        )
    finally:
        await setup.close()
    concurrency = ctx.sizes.hot_sku_concurrency
    # The callers share as many connections as the inventory's statement pool (where
    # reservations run) holds, as the callers of ReserveStock do.
    connections = min(concurrency, ConnectionBudget.of(ctx.environment.settings.db_connections).statements)
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    statement = (
        f"UPDATE {SCHEMA}.products SET stock_level = stock_level - $1 "
        "WHERE id = $2 AND stock_level >= $1 RETURNING stock_level"
    )

    async def update(index: int) -> bool:
        async with pool.acquire() as conn:
            await conn.fetchval(statement, quantities[index], product_id)
        return True

    task, advance = ctx.task("hot-sku: raw UPDATE limit", total=len(quantities))
    try:
        stats = await closed_loop(
            update, concurrency=concurrency, duration_s=600, max_requests=len(quantities), on_progress=advance
        )
    finally:
        await pool.close()
    ctx.finish(task)
    return stats
