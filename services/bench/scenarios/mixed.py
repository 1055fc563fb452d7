"""mixed: what a user runs, measured the way they call it. `fulfillment up` (its worker
with up's default pool and concurrency, the monitor running) behind Envoy; single
CreateOrder calls as HTTP/JSON with a customer token in a closed loop at c=8 then c=32,
bulk requests of 1,000 orders over HTTP beside them, and the lifecycle draining what both
create; once with step delays 0, once with the defaults (1-3 s). Per case: create
throughput and latency, bulk orders/s, delivered/s in the window, and the stack's memory
as PSS summed over every process `up` runs (Envoy included)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg2
import redis

from services.bench.clients import order_request, seed_products
from services.bench.context import PROFILES, ScenarioContext, target
from services.bench.http1 import HttpConnection, HttpPool, json_body
from services.bench.rss import process_tree_pss
from services.bench.stats import RunStats, closed_loop
from services.common.auth.principal import Role
from services.common.tls import channel_credentials
from services.devtools.stores import REDIS_LOCK_KEY, autocommit_cursor

LEVELS = (8, 32)
PSS_LIMIT_MB = 330  # the Django/DRF/Celery peer's stack, measured on this machine
TAIL_LIMIT = 4.0  # create p99 at c=32 over its p50
KEEPS_THROUGHPUT = 0.95  # c=32 over c=8: "no drop", within run-to-run noise
POLL_S = 0.5


@dataclass(frozen=True)
class MixedSizes:
    window_s: float  # each concurrency level's closed loop
    max_requests: int  # per window
    bulk_size: int  # orders per bulk request
    bulk_requests: int  # per window, one at a time beside the single creates
    delays: tuple[tuple[float, float], ...]  # (min, max) step delays, one stack per pair
    drain_s: float  # after the windows, how long the lifecycle may take to finish


SIZES = {
    "full": MixedSizes(15.0, 30_000, 1000, 3, ((0.0, 0.0), (1.0, 3.0)), 60.0),
    "quick": MixedSizes(5.0, 10_000, 1000, 1, ((0.0, 0.0), (1.0, 3.0)), 30.0),
    # One stack with short delays: the harness test covers the delayed path (lifecycle
    # covers delays 0) and a restart of `up` costs as much as the rest of the phase.
    "tiny": MixedSizes(0.5, 40, 20, 1, ((0.1, 0.3),), 30.0),
}


def _sizes(ctx: ScenarioContext) -> MixedSizes:
    return next(SIZES[name] for name, sizes in PROFILES.items() if sizes is ctx.sizes)


def _delays_label(delays: tuple[float, float]) -> str:
    low, high = delays
    return f"delays {low:g}" if low == high else f"delays {low:g}-{high:g} s"


async def run(ctx: ScenarioContext) -> dict[str, Any]:
    env, sizes = ctx.environment, _sizes(ctx)
    rows: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    verdicts: dict[str, bool] = {}
    # The parts earlier scenarios started (and their settings) make way for `up`'s stack.
    for name in [n for n in env.processes if n not in env.helpers]:
        env.stop(name)
    if env.own_stack:
        _set_aside(env.database_url, env.settings.redis_url)
    phases = sizes.delays if env.own_stack else ((-1.0, -1.0),)
    for index, delays in enumerate(phases):
        label = _delays_label(delays) if env.own_stack else "running stack"
        phase_rows, phase_checks = await _phase(ctx, sizes, delays, label, index)
        rows += phase_rows
        for check, value in phase_checks.items():
            checks[f"{label}: {check}"] = value
        verdicts[f"{label}: no create or bulk errors"] = all(
            r["system"]["errors"] == 0 and r["bulk_errors"] == 0 for r in phase_rows
        )
        verdicts[f"{label}: every order answered created is in the database"] = (
            phase_checks["orders in the database"] == phase_checks["orders created"]
        )
        verdicts[f"{label}: no order FAILED"] = phase_checks["failed"] == 0
        left = phase_checks["processes left running"]
        verdicts[f"{label}: no process of the stack left running"] = left == 0
    peak_pss = max(r["stack_pss_mb"] for r in rows)
    targets = []
    for label in dict.fromkeys(r["phase"] for r in rows):
        by_level = {r["concurrency"]: r["system"] for r in rows if r["phase"] == label}
        low, high = by_level[LEVELS[0]], by_level[LEVELS[-1]]
        tail = high["p99_ms"] / high["p50_ms"] if high["p50_ms"] else 0.0
        kept = high["throughput"] / low["throughput"] if low["throughput"] else 0.0
        targets += [
            target(
                f"mixed {label}: create p99/p50 at c={LEVELS[-1]}", f"<= {TAIL_LIMIT:g}x", tail,
                0 < tail <= TAIL_LIMIT, "x",
            ),
            target(
                f"mixed {label}: create c={LEVELS[-1]} throughput over c={LEVELS[0]}",
                f">= {KEEPS_THROUGHPUT:.0%}", kept * 100, kept >= KEEPS_THROUGHPUT, "%",
            ),
        ]
    targets.append(
        target("mixed: stack total PSS (every process `up` runs)", f"<= {PSS_LIMIT_MB} MB", peak_pss,
               peak_pss <= PSS_LIMIT_MB, "MB")
    )
    return {
        "what": "`fulfillment up` through Envoy: HTTP single creates (closed loop) + bulk "
        f"requests of {sizes.bulk_size} + the lifecycle draining them (worker as `up` runs it)",
        "limit": "none in this run: the Django/DRF/Celery peer did 23-25 creates/s (p99 0.5-1.7 s), "
        "57 bulk orders/s, 14-15 delivered/s here",
        "unit": "creates/s",
        "extra_columns": [
            ("bulk_orders_per_s", "bulk orders/s"),
            ("delivered_per_s", "delivered/s"),
            ("steps_per_s", "steps/s"),
            ("stack_pss_mb", "stack PSS MB"),
        ],
        "rows": rows,
        "stack_pss_at_peak": _peak_breakdown(rows),
        "checks": checks,
        "verdicts": verdicts,
        "targets": targets,
    }


async def _phase(
    ctx: ScenarioContext, sizes: MixedSizes, delays: tuple[float, float], label: str, index: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    env = ctx.environment
    if env.own_stack:
        env.start(
            "stack",
            [sys.executable, "-m", "services.cli", "up"],
            lambda: "up: ready" in env.processes["stack"].log_tail(200),
            timeout=120,
            extra_env={
                "FULFILLMENT_STEP_DELAY_MIN_S": f"{delays[0]:g}",
                "FULFILLMENT_STEP_DELAY_MAX_S": f"{delays[1]:g}",
            },
        )
    products = await seed_products(
        env.settings.inventory_addr, f"{ctx.tag}-mixed{index}", 50, 10_000_000,
        channel_credentials(env.settings), env.bearer(Role.ADMIN),
    )
    customer = f"bench-{ctx.tag}-mixed{index}"
    bearer = env.bearer(Role.CUSTOMER)
    authorization = bearer[0][1] if bearer else ""
    port = env.settings.gateway_port
    pool = HttpPool("127.0.0.1", port, max(LEVELS), authorization)
    bulk_connection = HttpConnection("127.0.0.1", port, authorization)
    memory = _StackMemory(env.stack_pids())

    def body() -> bytes:
        return json_body(order_request(ctx.rng, products, customer, uuid.uuid4().hex))

    async def create(_: int) -> bool:
        status, _reply = await pool.post("/v1/orders", body())
        return status == 200

    async def bulk_while(window: asyncio.Event) -> tuple[int, int, float]:
        """Bulk requests one after another while the window lasts (at most
        `bulk_requests`): orders created, orders refused or lost, seconds spent."""
        created = refused = 0
        spent = 0.0
        for _ in range(sizes.bulk_requests):
            if window.is_set():
                break
            payload = b"[" + b",".join(body() for _ in range(sizes.bulk_size)) + b"]"
            sent = time.perf_counter()
            try:
                status, reply = await bulk_connection.post("/v1/orders:bulkCreate", payload)
                results = json.loads(reply) if status == 200 else []
            except (ConnectionError, OSError, ValueError):
                status, results = 0, []
            spent += time.perf_counter() - sent
            made = sum(1 for result in results if "order" in result)
            created += made
            refused += sizes.bulk_size - made
        return created, refused, spent

    rows = []
    created = 0
    conn = psycopg2.connect(env.database_url)
    conn.autocommit = True
    sampler = asyncio.create_task(memory.sample_until_cancelled())
    try:
        warm_task, warm_advance = ctx.task(f"mixed {label}: warm-up", total=None)
        warm = await closed_loop(
            create, concurrency=LEVELS[0], duration_s=max(0.2, sizes.window_s / 5),
            max_requests=sizes.max_requests, on_progress=warm_advance,
        )
        ctx.finish(warm_task)
        created += warm.count
        for concurrency in LEVELS:
            task, advance = ctx.task(f"mixed {label}: creates c={concurrency} + bulk", total=None)
            window_over = asyncio.Event()
            bulk = asyncio.create_task(bulk_while(window_over))
            memory.peak_mb = 0.0
            began = time.time()
            stats = await closed_loop(
                create, concurrency=concurrency, duration_s=sizes.window_s,
                max_requests=sizes.max_requests, on_progress=advance,
            )
            ended = time.time()
            await asyncio.to_thread(memory.sample)
            window_over.set()
            bulk_created, bulk_refused, bulk_spent = await bulk
            ctx.finish(task)
            created += stats.count + bulk_created
            delivered, steps = _lifecycle_between(conn, customer, began, ended)
            rows.append(
                _row(label, concurrency, stats, bulk_created, bulk_refused, bulk_spent,
                     delivered / (ended - began), steps / (ended - began), memory)
            )
        task, advance = ctx.task(f"mixed {label}: lifecycle drains", total=created)
        counts = await _drain(conn, customer, created, sizes.drain_s, advance)
        ctx.finish(task)
    except BaseException:
        conn.close()
        raise
    finally:
        sampler.cancel()
        await pool.close()
        await bulk_connection.close()
    conn.close()
    moving = sum(counts.values()) - sum(counts.get(s, 0) for s in ("DELIVERED", "FAILED", "CANCELED"))
    checks: dict[str, Any] = {
        "orders created": created,
        "orders in the database": sum(counts.values()),
        "delivered": counts.get("DELIVERED", 0),
        "failed": counts.get("FAILED", 0),
        f"still moving after the {sizes.drain_s:g} s drain bound": moving,
    }
    pids = memory.pids_seen()
    if env.own_stack:
        env.stop("stack", timeout=30)
        _set_aside(env.database_url, env.settings.redis_url)
    checks["processes left running"] = sum(1 for pid in pids if _alive(pid)) if env.own_stack else 0
    return rows, checks


def _set_aside(database_url: str, redis_url: str) -> None:
    """Orders still moving (earlier scenarios', or what a phase's drain bound left) must
    not load the next phase or a later scenario: their steps leave the (private) broker,
    and without a due time no monitor re-drives them."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter():
            if key != REDIS_LOCK_KEY.encode():
                client.delete(key)
    finally:
        client.close()
    with autocommit_cursor(database_url) as cur:
        cur.execute(
            "UPDATE orders.orders SET next_step_due_time = NULL "
            "WHERE status NOT IN ('DELIVERED', 'FAILED', 'CANCELED')"
        )


def _row(
    label: str, concurrency: int, stats: RunStats, bulk_created: int, bulk_refused: int,
    bulk_spent: float, delivered_per_s: float, steps_per_s: float, memory: _StackMemory,
) -> dict[str, Any]:
    return {
        "case": f"{label}, c={concurrency}",
        "phase": label,
        "concurrency": concurrency,
        "system": stats.as_dict(),
        "bulk_orders": bulk_created,
        "bulk_errors": bulk_refused,
        "bulk_orders_per_s": round(bulk_created / bulk_spent, 1) if bulk_spent else 0.0,
        "delivered_per_s": round(delivered_per_s, 1),
        "steps_per_s": round(steps_per_s, 1),
        "stack_pss_mb": round(memory.peak_mb, 1),
        "stack_processes": memory.peak_processes,
    }


def _peak_breakdown(rows: list[dict[str, Any]]) -> list[dict[str, object]]:
    peak = max(rows, key=lambda r: r["stack_pss_mb"])
    return list(peak["stack_processes"])


class _StackMemory:
    """Total PSS of the stack's process trees, sampled now and then; the peak of a window."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.peak_mb = 0.0
        self.peak_processes: list[dict[str, object]] = []
        self._pids: set[int] = set()

    def sample(self) -> None:
        processes = [entry for root in self.roots for entry in process_tree_pss(root)]
        self._pids |= {int(str(entry["pid"])) for entry in processes}
        total = sum(float(str(entry["pss_mb"])) for entry in processes)
        if total >= self.peak_mb:
            self.peak_mb, self.peak_processes = total, processes

    async def sample_until_cancelled(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(1.0)

    def pids_seen(self) -> set[int]:
        return set(self._pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return " Z " not in stat.read()
    except OSError:
        return False


def _lifecycle_between(conn: Any, customer: str, began: float, ended: float) -> tuple[int, int]:
    """Orders delivered, and lifecycle steps taken (transitions out of a status), in the
    window: with the step delays, a backlog of first steps can hold every delivery back
    while the worker is busy."""
    window = (customer, began, ended)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM orders.orders WHERE customer_name = %s AND status = 'DELIVERED' "
            "AND update_time >= to_timestamp(%s) AND update_time < to_timestamp(%s)",
            window,
        )
        delivered = int(cur.fetchone()[0])
        cur.execute(
            "SELECT count(*) FROM orders.order_history h JOIN orders.orders o USING (order_id) "
            "WHERE o.customer_name = %s AND h.from_status IS NOT NULL "
            "AND h.time >= to_timestamp(%s) AND h.time < to_timestamp(%s)",
            window,
        )
        return delivered, int(cur.fetchone()[0])


def _status_counts(conn: Any, customer: str) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT status, count(*) FROM orders.orders WHERE customer_name = %s GROUP BY status", (customer,)
        )
        return dict(cur.fetchall())


async def _drain(conn: Any, customer: str, created: int, bound_s: float, advance: Any) -> dict[str, int]:
    """Wait (at most `bound_s`) until every order of the phase is at rest."""
    deadline = time.monotonic() + bound_s
    seen = 0
    while True:
        counts = _status_counts(conn, customer)
        done = counts.get("DELIVERED", 0) + counts.get("FAILED", 0) + counts.get("CANCELED", 0)
        advance(done - seen)
        seen = done
        if done >= created or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(POLL_S)
