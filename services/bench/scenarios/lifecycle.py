"""lifecycle: N orders (sent as BulkCreateOrders streams) walked from creation to
DELIVERED by the lifecycle worker with step delays 0; delivered orders/s and the
creation -> DELIVERED latency, read from the orders' own timestamps. Beside it: N chains
of 4 no-op Celery tasks on the same broker, pool and concurrency."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import psycopg2
import redis

from services.bench.clients import open_channel, order_request, seed_products
from services.bench.context import ScenarioContext, ratio, target
from services.bench.noop_chain import DONE_KEY, NOOP_QUEUE, NOOP_TASK, create_noop_app
from services.bench.scenarios.bulk import BULK_CREATE
from services.bench.stats import RunStats, summarize
from services.common.auth.principal import Role
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.common.tls import channel_credentials

STREAM_SIZE = 1000
POLL_S = 0.2


async def run(ctx: ScenarioContext) -> dict[str, Any]:
    env = ctx.environment
    count = ctx.sizes.lifecycle_orders
    env.start_services()
    if env.own_stack:
        # First steps of orders the earlier scenarios created: not part of this measurement.
        redis.Redis.from_url(env.settings.redis_url).delete(LIFECYCLE_QUEUE)
    env.start_worker(ctx.worker_concurrency, ctx.worker_pool)
    products = await seed_products(
        env.settings.inventory_addr, f"{ctx.tag}-life", 50, 10_000_000,
        channel_credentials(env.settings), env.bearer(Role.ADMIN),
    )
    customer = f"bench-{ctx.tag}-life"
    requests = [order_request(ctx.rng, products, customer, uuid.uuid4().hex) for _ in range(count)]
    system, outcome = await _walk_orders(ctx, requests, customer)
    env.stop("worker")
    limit = await asyncio.to_thread(_noop_chains, ctx, count)
    share = ratio(system.throughput, limit.throughput)
    return {
        "what": f"{count} orders, creation -> DELIVERED, step delays 0, "
        f"worker {ctx.worker_pool} pool, concurrency {ctx.worker_concurrency} "
        "(latency = creation -> DELIVERED)",
        "limit": f"{count} chains of 4 no-op Celery tasks, same broker, pool and concurrency",
        "unit": "delivered/s",
        "rows": [
            {
                "case": f"{count} orders",
                "system": system.as_dict(),
                "limit": limit.as_dict(),
                "ratio": round(share, 3),
            }
        ],
        "checks": outcome,
        "verdicts": {"every order DELIVERED": outcome["delivered"] == count},
        "targets": [
            target("lifecycle delivered/s", ">= 300", system.throughput, system.throughput >= 300, "/s"),
            target("lifecycle share of no-op chain", ">= 40%", share * 100, share >= 0.4, "%"),
        ],
    }


async def _walk_orders(
    ctx: ScenarioContext, requests: list[orders_pb2.CreateOrderRequest], customer: str
) -> tuple[RunStats, dict[str, int]]:
    task, advance = ctx.task("lifecycle: orders delivered", total=len(requests))
    settings = ctx.environment.settings
    async with open_channel(settings.orders_addr, channel_credentials(settings)) as channel:
        bulk = channel.stream_stream(
            BULK_CREATE,
            request_serializer=orders_pb2.CreateOrderRequest.SerializeToString,
            response_deserializer=orders_pb2.BulkCreateOrderResult.FromString,
        )
        rejected = 0
        for start in range(0, len(requests), STREAM_SIZE):
            async for result in bulk(
                iter(requests[start : start + STREAM_SIZE]), timeout=120,
                metadata=ctx.environment.bearer(Role.CUSTOMER),
            ):
                rejected += result.status.code != 0
    conn = psycopg2.connect(ctx.environment.database_url)
    conn.autocommit = True
    deadline = time.monotonic() + ctx.sizes.lifecycle_timeout_s
    seen = 0
    try:
        while True:
            counts = _status_counts(conn, customer)
            done = counts.get("DELIVERED", 0) + counts.get("FAILED", 0) + counts.get("CANCELED", 0)
            advance(done - seen)
            seen = done
            if done >= len(requests) - rejected or time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL_S)
        latencies, span = _delivery_latencies(conn, customer)
    finally:
        conn.close()
    ctx.finish(task)
    delivered = counts.get("DELIVERED", 0)
    stats = summarize(latencies, len(requests) - delivered, span, count=delivered)
    return stats, {
        "orders sent": len(requests),
        "rejected at intake": rejected,
        "delivered": delivered,
        "failed": counts.get("FAILED", 0),
        "still moving": len(requests) - rejected - done,
    }


def _status_counts(conn: Any, customer: str) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT status, count(*) FROM orders.orders WHERE customer_name = %s GROUP BY status", (customer,)
        )
        return dict(cur.fetchall())


def _delivery_latencies(conn: Any, customer: str) -> tuple[list[float], float]:
    """Each delivered order's creation -> DELIVERED seconds, and first creation -> last delivery."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT extract(epoch FROM update_time - create_time)::float8, "
            "extract(epoch FROM max(update_time) OVER () - min(create_time) OVER ())::float8 "
            "FROM orders.orders WHERE customer_name = %s AND status = 'DELIVERED'",
            (customer,),
        )
        rows = cur.fetchall()
    return [r[0] for r in rows], (rows[0][1] if rows else 0.0)


def _noop_chains(ctx: ScenarioContext, count: int) -> RunStats:
    env = ctx.environment
    redis_url = env.settings.redis_url
    client = redis.Redis.from_url(redis_url)
    client.delete(DONE_KEY, NOOP_QUEUE)
    env.start(
        "noop-worker",
        [
            sys.executable, "-m", "services.bench.noop_chain",
            redis_url, str(ctx.worker_concurrency), ctx.worker_pool,
        ],
        lambda: "noop_worker_ready" in env.processes["noop-worker"].log_tail(50),
        helper=True,
    )
    sender = create_noop_app(redis_url)
    task, advance = ctx.task("lifecycle: no-op chain limit", total=count)
    sent_at: dict[str, float] = {}
    began = time.time()
    try:
        with sender.producer_or_acquire() as producer:
            for _ in range(count):
                chain_id = uuid.uuid4().hex
                sent_at[chain_id] = time.time()
                sender.send_task(NOOP_TASK, args=[chain_id, 1], producer=producer)
        deadline = time.monotonic() + ctx.sizes.lifecycle_timeout_s
        seen = 0
        while seen < count and time.monotonic() < deadline:
            done = client.llen(DONE_KEY)
            advance(done - seen)
            seen = done
            time.sleep(POLL_S / 2)
        finished = [entry.decode().split() for entry in client.lrange(DONE_KEY, 0, -1)]
    finally:
        env.stop("noop-worker")
        client.delete(DONE_KEY, NOOP_QUEUE)
        client.close()
        sender.close()
    ctx.finish(task)
    latencies = [float(at) - sent_at[chain_id] for chain_id, at in finished if chain_id in sent_at]
    span = max((float(at) for _, at in finished), default=began) - began
    return summarize(latencies, count - len(finished), span, count=len(finished))
