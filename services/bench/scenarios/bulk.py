"""bulk: BulkCreateOrders streams of 1,000 orders, beside raw psycopg2 multi-row INSERTs
of the same rows (orders, items, history; one transaction per 1,000, as many connections
as parallel streams) into scratch copies of the same tables."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg2
from psycopg2.extras import execute_values, register_uuid

from services.bench.clients import close_channels, open_channels, order_request, seed_products
from services.bench.context import ScenarioContext, ratio, target
from services.bench.raw_tables import SCHEMA, create_raw_tables, drop_raw_tables
from services.bench.stats import RunStats, summarize
from services.common.auth.principal import Role
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.common.tls import channel_credentials

BULK_CREATE = "/fulfillment.orders.v1.OrderService/BulkCreateOrders"


async def run(ctx: ScenarioContext) -> dict[str, Any]:
    env, sizes = ctx.environment, ctx.sizes
    env.start_services()
    products = await seed_products(
        env.settings.inventory_addr, f"{ctx.tag}-bulk", 50, 1_000_000,
        channel_credentials(env.settings), env.bearer(Role.ADMIN),
    )
    customer = f"bench-{ctx.tag}-bulk"
    streams = [
        [order_request(ctx.rng, products, customer, uuid.uuid4().hex) for _ in range(sizes.bulk_stream_size)]
        for _ in range(sizes.bulk_streams)
    ]
    system = await _bulk_streams(ctx, streams)
    create_raw_tables(env.database_url)
    try:
        limit = await asyncio.to_thread(_raw_inserts, ctx, streams)
    finally:
        drop_raw_tables(env.database_url)
    total = sizes.bulk_streams * sizes.bulk_stream_size
    share = ratio(system.throughput, limit.throughput)
    return {
        "what": f"BulkCreateOrders, {sizes.bulk_streams} streams of {sizes.bulk_stream_size}, "
        f"{sizes.bulk_parallel_streams} at a time (latency = one whole stream)",
        "limit": "psycopg2 multi-row INSERT of the same orders, items and history rows, "
        "one transaction per stream",
        "unit": "orders/s",
        "rows": [
            {
                "case": f"{total} orders",
                "system": system.as_dict(),
                "limit": limit.as_dict(),
                "ratio": round(share, 3),
            }
        ],
        "checks": {"orders created": system.count, "orders sent": total},
        "verdicts": {"every order created": system.count == total and system.errors == 0},
        "targets": [
            target("bulk orders/s", ">= 5000", system.throughput, system.throughput >= 5000, "orders/s"),
            target("bulk share of raw INSERT", ">= 50%", share * 100, share >= 0.5, "%"),
        ],
    }


async def _bulk_streams(ctx: ScenarioContext, streams: list[list[orders_pb2.CreateOrderRequest]]) -> RunStats:
    settings = ctx.environment.settings
    channels = open_channels(
        settings.orders_addr, ctx.sizes.bulk_parallel_streams, channel_credentials(settings)
    )
    task, advance = ctx.task("bulk: BulkCreateOrders", total=sum(len(s) for s in streams))
    gate = asyncio.Semaphore(ctx.sizes.bulk_parallel_streams)
    latencies: list[float] = []
    created = errors = 0

    async def one_stream(index: int, requests: list[orders_pb2.CreateOrderRequest]) -> None:
        nonlocal created, errors
        async with gate:
            call = channels[index % len(channels)].stream_stream(
                BULK_CREATE,
                request_serializer=orders_pb2.CreateOrderRequest.SerializeToString,
                response_deserializer=orders_pb2.BulkCreateOrderResult.FromString,
            )
            sent = time.perf_counter()
            async for result in call(
                iter(requests), timeout=120, metadata=ctx.environment.bearer(Role.CUSTOMER)
            ):
                if result.status.code == 0 and result.order.order_id:
                    created += 1
                else:
                    errors += 1
                advance(1)
            latencies.append(time.perf_counter() - sent)

    began = time.perf_counter()
    try:
        await asyncio.gather(*(one_stream(i, s) for i, s in enumerate(streams)))
    finally:
        await close_channels(channels)
    duration = time.perf_counter() - began
    ctx.finish(task)
    return summarize(latencies, errors, duration, count=created)


def _raw_inserts(ctx: ScenarioContext, streams: list[list[orders_pb2.CreateOrderRequest]]) -> RunStats:
    url = ctx.environment.database_url
    now = datetime.now(UTC)
    batches = []
    for requests in streams:
        orders, items, history = [], [], []
        for request in requests:
            order_id = uuid.uuid4()
            orders.append(
                (
                    order_id,
                    "bench-customer",
                    request.customer_name,
                    "PENDING",
                    "order received",
                    now,
                    now,
                    now,
                    0,
                    False,
                    request.request_id,
                    "fingerprint-" + request.request_id,
                )
            )
            items.extend(
                (order_id, n, i.product_id, i.quantity, "19.99") for n, i in enumerate(request.items)
            )
            history.append((order_id, None, "PENDING", now, "order received", now, "customer:bench"))
        batches.append((orders, items, history))
    task, advance = ctx.task("bulk: raw INSERT limit", total=sum(len(s) for s in streams))
    connections = [psycopg2.connect(url) for _ in range(ctx.sizes.bulk_parallel_streams)]
    free = list(connections)
    latencies: list[float] = []

    def insert_batch(batch: tuple[list, list, list]) -> None:
        conn = free.pop()
        try:
            sent = time.perf_counter()
            with conn, conn.cursor() as cur:
                execute_values(
                    cur,
                    f"INSERT INTO {SCHEMA}.orders (order_id, customer_id, customer_name, status, "
                    "status_note, create_time, update_time, next_step_due_time, stale_claims, "
                    "stock_release_pending, request_id, request_fingerprint) VALUES %s",
                    batch[0],
                    page_size=len(batch[0]),
                )
                execute_values(
                    cur,
                    f"INSERT INTO {SCHEMA}.order_items (order_id, line_number, product_id, "
                    "quantity, unit_price) VALUES %s",
                    batch[1],
                    page_size=len(batch[1]),
                )
                execute_values(
                    cur,
                    f"INSERT INTO {SCHEMA}.order_history (order_id, from_status, to_status, "
                    "time, note, next_step_due_time, actor) VALUES %s",
                    batch[2],
                    page_size=len(batch[2]),
                )
            latencies.append(time.perf_counter() - sent)
            advance(len(batch[0]))
        finally:
            free.append(conn)

    register_uuid()
    began = time.perf_counter()
    try:
        with ThreadPoolExecutor(ctx.sizes.bulk_parallel_streams) as pool:
            list(pool.map(insert_batch, batches))
    finally:
        for conn in connections:
            conn.close()
    duration = time.perf_counter() - began
    ctx.finish(task)
    return summarize(latencies, 0, duration, count=sum(len(b[0]) for b in batches))
