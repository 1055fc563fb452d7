"""What asyncpg's own pool would cost the hot statements, against the StatementPool they run
on (services/common/database/statements.py):

    uv run python -m services.bench.statement_pool [--seconds 3] [--repeat 3]

Each workload runs at each concurrency on three pools of 16 connections (the statement
share of FULFILLMENT_DB_CONNECTIONS=24), in shuffled order, `--repeat` times:
- `StatementPool`, ours;
- `asyncpg.Pool, no reset`: acquire, fetch, release with a reset that does nothing, which is
  what replacing ours would be (autocommit statements leave no session state to reset);
- `asyncpg.Pool, default`: `Pool.fetch`, whose release sends asyncpg's reset query.
It prints the medians of statements per second and of CPU per statement, in this process
(pool and driver) and in the PostgreSQL backends serving it (read from /proc, so the
server must run on this machine). Workloads: a one-row `UPDATE ... RETURNING`, the orders
service's create statement (one order, 1-3 items) and its transition from one status
(CAS, history row, notification). Runs on a private database, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import asyncpg
import uvloop
from sqlalchemy import text

from services.common.database.statements import RawStatement, StatementPool
from services.common.database.urls import admin_url, libpq_url
from services.devtools.stores import private_database
from services.orders.adapters.intake_statements import ADD_NEW_ORDERS
from services.orders.adapters.transition_statements import ADVANCE_FROM_ONE_STATUS

POOL_SIZE = 16
COUNTER_ROWS = 1_000
PATH = ["PENDING", "PROCESSING", "PACKAGING", "SHIPPED", "DELIVERED"]
# Enough PENDING orders that no run walks all its callers' orders to the end of PATH.
ORDERS_TO_ADVANCE = 40_000
ORDERS_PER_INSERT = 1_000

UPDATE = RawStatement.compile(
    text("UPDATE bench_pool.counter SET n = n + 1 WHERE id = CAST(:id AS int) RETURNING n")
)
CREATE = RawStatement.compile(ADD_NEW_ORDERS)
ADVANCE = RawStatement.compile(ADVANCE_FROM_ONE_STATUS)

Params = dict[str, Any]


class Pool(Protocol):
    async def fetch(self, statement: RawStatement, params: Mapping[str, object]) -> list[Any]: ...

    async def close(self) -> None: ...


async def _nothing_to_reset(_conn: asyncpg.Connection) -> None:
    pass


class AsyncpgPool:
    def __init__(self, dsn: str, size: int, reset_query: bool) -> None:
        self._pool = asyncpg.create_pool(
            dsn, min_size=0, max_size=size, max_inactive_connection_lifetime=0,
            reset=None if reset_query else _nothing_to_reset,
        )
        self._reset_query = reset_query

    async def open(self) -> AsyncpgPool:
        await self._pool
        return self

    async def fetch(self, statement: RawStatement, params: Mapping[str, object]) -> list[Any]:
        if self._reset_query:
            return await self._pool.fetch(statement.sql, *statement.arguments(params))
        async with self._pool.acquire() as conn:
            return await conn.fetch(statement.sql, *statement.arguments(params))

    async def close(self) -> None:
        await self._pool.close()


async def open_pool(kind: str, dsn: str) -> Pool:
    if kind == "StatementPool":
        return StatementPool(dsn, POOL_SIZE)
    return await AsyncpgPool(dsn, POOL_SIZE, reset_query=kind == "asyncpg.Pool, default").open()


POOLS = ["StatementPool", "asyncpg.Pool, no reset", "asyncpg.Pool, default"]


def update_params(_caller: int, _call: int) -> tuple[RawStatement, Params]:
    return UPDATE, {"id": random.randint(1, COUNTER_ROWS)}


def create_params(_caller: int, _call: int, count: int = 1) -> tuple[RawStatement, Params]:
    order_ids = [uuid.uuid4() for _ in range(count)]
    lines = [(order_id, number) for order_id in order_ids for number in range(random.randint(1, 3))]
    return CREATE, {
        "order_ids": order_ids,
        "customer_ids": ["bench"] * count,
        "customer_names": ["bench"] * count,
        "request_ids": [uuid.uuid4().hex for _ in order_ids],
        "fingerprints": ["f"] * count,
        "due_in_s": 3600.0,
        "item_order_ids": [order_id for order_id, _ in lines],
        "line_numbers": [number for _, number in lines],
        "product_ids": [number + 1 for _, number in lines],
        "quantities": [1] * len(lines),
        "unit_prices": [Decimal("9.99")] * len(lines),
        "actor": "customer:bench",
    }


class OrdersExhausted(RuntimeError):
    """A caller walked every order of its share to the end of PATH within one measurement."""


class Advances:
    """Each caller walks orders of its own along the normal path, one transition per call:
    every call a real compare-and-set, history row and notification, callers never meet."""

    def __init__(self, order_ids: list[uuid.UUID]) -> None:
        self._order_ids = order_ids
        self._shares: list[list[uuid.UUID]] = []

    async def reset(self, admin: asyncpg.Connection, callers: int) -> None:
        await admin.execute("UPDATE orders.orders SET status = 'PENDING' WHERE status <> 'PENDING'")
        await admin.execute("DELETE FROM orders.order_history WHERE from_status IS NOT NULL")
        await admin.execute("VACUUM orders.orders, orders.order_history")
        share = len(self._order_ids) // callers
        self._shares = [self._order_ids[k * share : (k + 1) * share] for k in range(callers)]

    def params(self, caller: int, call: int) -> tuple[RawStatement, Params]:
        step = call % (len(PATH) - 1)
        share = self._shares[caller]
        if call // (len(PATH) - 1) >= len(share):
            raise OrdersExhausted(
                f"a caller walked all {len(share)} of its orders to {PATH[-1]} within one "
                "measurement: run with a larger --orders-to-advance"
            )
        return ADVANCE, {
            "order_id": share[call // (len(PATH) - 1)],
            "from_status": PATH[step],
            "to_status": PATH[step + 1],
            "note": "bench",
            "due_in_s": 3600.0,
            "release_stock": False,
            "channel": "bench_pool_unheard",
            "actor": "service:bench",
        }


def backend_cpu_s(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def measure(
    admin: asyncpg.Connection,
    dsn: str,
    kind: str,
    make: Callable[[int, int], tuple[RawStatement, Params]],
    callers: int,
    seconds: float,
) -> dict[str, float]:
    tag = f"bench_pool_{uuid.uuid4().hex[:8]}"
    pool = await open_pool(kind, f"{dsn}?application_name={tag}")
    counts = [0] * callers
    running = True

    async def caller(index: int) -> None:
        while running:
            statement, params = make(index, counts[index])
            await pool.fetch(statement, params)
            counts[index] += 1

    tasks = [asyncio.create_task(caller(k)) for k in range(callers)]
    try:
        await asyncio.sleep(0.7)  # every connection open, every statement prepared
        pids = [
            row["pid"]
            for row in await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1", tag
            )
        ]
        n0, cpu0, pg0, t0 = sum(counts), time.process_time(), backend_cpu_s(pids), time.perf_counter()
        await asyncio.sleep(seconds)
        n = sum(counts) - n0
        cpu, pg = time.process_time() - cpu0, backend_cpu_s(pids) - pg0
        wall = time.perf_counter() - t0
    finally:
        running = False
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        await asyncio.wait_for(pool.close(), 30)
    return {"per_s": n / wall, "client_us": cpu / n * 1e6, "server_us": pg / n * 1e6}


async def prepare(dsn: str, orders_to_advance: int) -> list[uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f"""
            CREATE SCHEMA bench_pool;
            CREATE TABLE bench_pool.counter (id int PRIMARY KEY, n bigint NOT NULL);
            INSERT INTO bench_pool.counter SELECT g, 0 FROM generate_series(1, {COUNTER_ROWS}) g;
            """
        )
        order_ids: list[uuid.UUID] = []
        for _ in range(max(1, orders_to_advance // ORDERS_PER_INSERT)):
            statement, params = create_params(0, 0, count=ORDERS_PER_INSERT)
            await conn.fetch(statement.sql, *statement.arguments(params))
            order_ids.extend(params["order_ids"])
        return order_ids
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> None:
    with private_database(admin_url(args.database_url), "fulfillment_bench_pool") as url:
        dsn = libpq_url(url)
        advances = Advances(await prepare(dsn, args.orders_to_advance))
        workloads = {"update": update_params, "create": create_params, "advance": advances.params}
        admin = await asyncpg.connect(dsn)
        results: dict[tuple[str, int, str], list[dict[str, float]]] = {}
        try:
            for workload in args.workloads:
                for callers in args.concurrency:
                    for _ in range(args.repeat):
                        for kind in random.sample(POOLS, len(POOLS)):
                            if workload == "advance":
                                await advances.reset(admin, callers)
                            figures = await measure(
                                admin, dsn, kind, workloads[workload], callers, args.seconds
                            )
                            results.setdefault((workload, callers, kind), []).append(figures)
                            rounded = {k: round(v) for k, v in figures.items()}
                            print(workload, callers, kind, rounded, flush=True)
        finally:
            await admin.close()
    print(f"\nmedians of {args.repeat} runs: statements/s, CPU us per statement (this process, PostgreSQL)")
    order = {key: (args.workloads.index(key[0]), key[1], POOLS.index(key[2])) for key in results}
    for (workload, callers, kind), runs in sorted(results.items(), key=lambda item: order[item[0]]):
        per_s, client, server = (
            statistics.median(r[key] for r in runs) for key in ("per_s", "client_us", "server_us")
        )
        print(f"{workload:8} c={callers:<3} {kind:24} {per_s:8,.0f}/s {client:6.0f} us {server:6.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/fulfillment"))
    parser.add_argument("--workloads", nargs="+", default=["update", "create", "advance"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--orders-to-advance", type=int, default=ORDERS_TO_ADVANCE)
    try:
        uvloop.run(run(parser.parse_args()))
    except OrdersExhausted as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
