"""lifecycle-delayed: orders created open-loop at a fixed rate for a sustained period and
walked to DELIVERED at the contract's step delays (1-3 s each), by the worker exactly as
`fulfillment up` runs it (its default --workers, the worker's default pool) with the
stale monitor running beside it, as in `up`.

Every figure is read back from the orders' own history. A transition's row records when
the order's next step is due: the delay the worker drew for it plus STEP_DUE_MARGIN_S,
both stamped by the database in the transition's statement, so each order's drawn delays
are known exactly. Its overhead is creation -> DELIVERED minus those delays: the broker,
the worker's timer and pool, the RPCs and the commits, queueing included.

Delivered/s is compared with the intake over the steady part of the run: from the first
creation plus the longest an order can take at the drawn delays, to the last creation.
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import redis
from prometheus_client.parser import text_string_to_metric_families

from services.bench.clients import (
    CREATE_ORDER,
    close_channels,
    open_channels,
    order_request,
    raw_calls,
    seed_products,
)
from services.bench.context import PROFILES, ScenarioContext, ratio, target
from services.bench.rss import process_tree_rss
from services.bench.stats import RunStats, percentile, summarize
from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.lifecycle.status import NORMAL_PATH, OrderStatus
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE
from services.common.lifecycle.timing import STEP_DUE_MARGIN_S
from services.common.tls import channel_credentials
from services.stack_parts import grpc_serving

MEMORY_LIMIT_MB = 150
OVERHEAD_P99_LIMIT_MS = 1000.0
RATE_TOLERANCE = 0.02  # delivered/s within 2% of the intake rate
SAMPLE_S = 1.0
CREATE_TIMEOUT_S = 10.0
CHANNELS = 4
TERMINAL = ("DELIVERED", "FAILED", "CANCELED")
# The transitions after which the worker drew a delay for the next step.
DELAYED_FROM = tuple(s.value for s in NORMAL_PATH[1:-1])


@dataclass(frozen=True)
class DelayedSizes:
    orders: int
    rate: float  # orders created per second, open loop
    drain_s: float  # after the last creation, how long the last orders may take


# 15/s: the Django/DRF/Celery peer delivered 14-15/s on this machine, and `up`'s worker
# (2 slots) topped out at ~21 delivered/s here when fed 40/s on a box loaded by other
# runs, so 15/s is about 70% of that ceiling (quiet, it carries ~100/s: benchmarks/
# README.md). 20,000 orders at 15/s is 22 minutes of intake.
SIZES = {
    "full": DelayedSizes(20_000, 15.0, 120.0),
    "quick": DelayedSizes(2_000, 15.0, 90.0),
    "tiny": DelayedSizes(24, 12.0, 45.0),
}


def _sizes(ctx: ScenarioContext) -> DelayedSizes:
    return next(SIZES[name] for name, sizes in PROFILES.items() if sizes is ctx.sizes)


def contract_delays() -> dict[str, str]:
    """The contract's default step delays (Settings' defaults), for the parts that read them."""
    return {
        "FULFILLMENT_STEP_DELAY_MIN_S": f"{Settings.step_delay_min_s:g}",
        "FULFILLMENT_STEP_DELAY_MAX_S": f"{Settings.step_delay_max_s:g}",
    }


def up_lifecycle_parts(settings: Settings, state_dir: Path) -> dict[str, tuple[list[str], str]]:
    """The worker's command line and ready line as `fulfillment up` builds them with its
    default --workers, and the monitor's when `up` runs it in its own process (tracing on)."""
    from services.cli import build_parser
    from services.stack import Stack

    workers = build_parser().parse_args(["up"]).workers
    stack = Stack(settings, workers, lambda _line: None, state_dir)
    return {
        child.name: (child.args, child.ready_line or "")
        for child in stack.children
        if child.name in ("worker", "monitor")
    }


async def run(ctx: ScenarioContext) -> dict[str, Any]:
    env, sizes = ctx.environment, _sizes(ctx)
    parts = up_lifecycle_parts(env.settings, env.log_dir)
    delays = contract_delays()
    if env.own_stack:
        # The orders service reads the delays too (the first step's due time): as in `up`.
        env.stop("orders")
        env.start(
            "orders", [sys.executable, "-m", "services.cli", "serve", "orders"],
            grpc_serving(env.settings.orders_addr, channel_credentials(env.settings)),
            extra_env=delays,
        )
    env.start_services()
    if env.own_stack:
        _park_earlier_orders(env.database_url, env.settings.redis_url)
        for name in ("worker", "monitor"):
            env.stop(name)
        for name, (args, ready_line) in parts.items():  # the monitor: in the worker, or alone
            env.start(name, args, _log_shows(env, name, ready_line), extra_env=delays)
    products = await seed_products(
        env.settings.inventory_addr, f"{ctx.tag}-delayed", 50, 10_000_000,
        channel_credentials(env.settings), env.bearer(Role.ADMIN),
    )
    customer = f"bench-{ctx.tag}-delayed"
    payloads = [
        order_request(ctx.rng, products, customer, uuid.uuid4().hex).SerializeToString()
        for _ in range(sizes.orders)
    ]
    redriven_before = _monitor_redrives(env.settings.monitor_metrics_addr)
    sampler = _Sampler(env, customer)
    intake, counts = await _run_open_loop(ctx, sizes, payloads, sampler)
    monitor_host = "monitor" if "monitor" in parts else "worker"
    monitor_alive = monitor_host in env.processes and env.processes[monitor_host].alive()
    redriven_after = _monitor_redrives(env.settings.monitor_metrics_addr)
    worker_peak = sampler.worker_peak()
    if env.own_stack:
        env.stop("worker")
        env.stop("monitor")
    walk = await asyncio.to_thread(_read_history, env.database_url, customer)
    return _result(
        sizes, parts["worker"][0], intake, walk, counts, sampler, worker_peak, monitor_alive,
        env.own_stack, None if redriven_before is None or redriven_after is None
        else redriven_after - redriven_before,
    )


def _log_shows(env: Any, name: str, line: str) -> Callable[[], bool]:
    return lambda: line in env.processes[name].log_tail(200)


def _park_earlier_orders(database_url: str, redis_url: str) -> None:
    """Orders the earlier scenarios of this run left moving (their steps waiting in the
    queue at delays 0, with no worker) are not part of this measurement: their steps leave
    the queue and the orders their due time, so that neither the worker nor the monitor
    (which would re-drive them a minute later) spends this run on them. The private
    stack's own database and Redis db only."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(LIFECYCLE_QUEUE)
    finally:
        client.close()
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE orders.orders SET next_step_due_time = NULL WHERE status <> ALL(%s)",
                (list(TERMINAL),),
            )
    finally:
        conn.close()


@dataclass
class Intake:
    sent: int
    latencies_s: list[float]
    errors: int
    span_s: float
    # How late the load generator sent a request after its slot, at worst: the open
    # loop held its rate only if this stays small.
    max_send_lag_ms: float


@dataclass
class _Sampler:
    """Once a second, off the event loop: progress, the worker's and Redis' memory."""

    env: Any
    customer: str
    redis_db_peak_bytes: int = 0
    redis_server_peak_used_bytes: int = 0
    redis_server_used_at_start: int = 0
    worker_processes: dict[int, dict[str, object]] = field(default_factory=dict)

    def sample(self, conn: Any, client: redis.Redis) -> tuple[int, int]:
        self.env.sample_rss()
        worker = self.env.processes.get("worker")
        if worker is not None and worker.alive():
            for entry in process_tree_rss(worker.popen.pid):
                self.worker_processes[int(str(entry["pid"]))] = entry
        keys = list(client.scan_iter(count=1000))
        db_bytes = sum(int(client.memory_usage(key, samples=0) or 0) for key in keys)
        self.redis_db_peak_bytes = max(self.redis_db_peak_bytes, db_bytes)
        used = int(client.info("memory")["used_memory"])
        self.redis_server_used_at_start = self.redis_server_used_at_start or used
        self.redis_server_peak_used_bytes = max(self.redis_server_peak_used_bytes, used)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FILTER (WHERE status = ANY(%s)), count(*) "
                "FROM orders.orders WHERE customer_name = %s",
                (list(TERMINAL), self.customer),
            )
            done, stored = cur.fetchone()
        return int(done), int(stored)

    def worker_peak(self) -> float:
        """The largest peak RSS of one process of the worker (its consumer or a pool
        child); from the stack's processes when the stack is not ours."""
        if self.worker_processes:
            return max(float(str(p["peak_rss_mb"])) for p in self.worker_processes.values())
        worker = self.env.rss_report().get("worker")
        return float(worker["peak_rss_mb"]) if worker else 0.0


async def _run_open_loop(
    ctx: ScenarioContext, sizes: DelayedSizes, payloads: list[bytes], sampler: _Sampler
) -> tuple[Intake, dict[str, int]]:
    env = ctx.environment
    channels = open_channels(env.settings.orders_addr, CHANNELS, channel_credentials(env.settings))
    calls = raw_calls(channels, CREATE_ORDER, env.bearer(Role.CUSTOMER))
    conn = psycopg2.connect(env.database_url)
    conn.autocommit = True
    client = redis.Redis.from_url(env.settings.redis_url, socket_timeout=5)
    intake_task, advance_intake = ctx.task(
        f"lifecycle-delayed: created at {sizes.rate:g}/s", total=len(payloads)
    )
    walk_task, advance_walk = ctx.task("lifecycle-delayed: at rest", total=len(payloads))
    counts = {"at rest": 0, "stored": 0}
    expected: list[int] = []  # known once the intake is over

    async def sample_until_at_rest() -> None:
        seen = 0
        while True:
            done, stored = await asyncio.to_thread(sampler.sample, conn, client)
            counts.update({"at rest": done, "stored": stored})
            advance_walk(done - seen)
            seen = done
            if expected and done >= expected[0]:
                return
            await asyncio.sleep(SAMPLE_S)

    sampling = asyncio.create_task(sample_until_at_rest())
    try:
        intake = await _send_open_loop(calls, payloads, sizes.rate, advance_intake)
        ctx.finish(intake_task)
        expected.append(intake.sent - intake.errors)
        try:
            await asyncio.wait_for(sampling, sizes.drain_s)
        except TimeoutError:
            pass  # counted below as still moving
        counts["at rest"], counts["stored"] = await asyncio.to_thread(sampler.sample, conn, client)
    finally:
        sampling.cancel()
        await close_channels(channels)
        conn.close()
        client.close()
    ctx.finish(walk_task)
    return intake, counts


async def _send_open_loop(
    calls: list[Any], payloads: list[bytes], rate: float, advance: Callable[[int], None]
) -> Intake:
    """Request i goes at start + i/rate whether or not the earlier ones were answered."""
    latencies: list[float] = []
    errors = 0
    max_lag = 0.0

    async def create(index: int) -> None:
        nonlocal errors
        sent = time.perf_counter()
        try:
            await calls[index % len(calls)](payloads[index], timeout=CREATE_TIMEOUT_S)
            latencies.append(time.perf_counter() - sent)
        except Exception:
            errors += 1
        advance(1)

    pending = []
    started = time.perf_counter()
    for index in range(len(payloads)):
        slot = started + index / rate
        if (wait := slot - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        max_lag = max(max_lag, time.perf_counter() - slot)
        pending.append(asyncio.create_task(create(index)))
    span = time.perf_counter() - started
    await asyncio.gather(*pending)
    return Intake(len(payloads), latencies, errors, span, max_lag * 1000)


@dataclass
class Walk:
    """What the orders' history says about their way to rest."""

    created: list[float] = field(default_factory=list)
    delivered: list[float] = field(default_factory=list)
    overheads_s: list[float] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    delay_sums_s: list[float] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)
    first_step_s: list[float] = field(default_factory=list)
    step_lateness_s: list[float] = field(default_factory=list)
    rested_at: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    redrive_notes: int = 0


def _read_history(database_url: str, customer: str) -> Walk:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT h.order_id, h.to_status, extract(epoch FROM h.time)::float8, "
                "extract(epoch FROM h.next_step_due_time - h.time)::float8, coalesce(h.note, '') "
                "FROM orders.order_history AS h JOIN orders.orders AS o USING (order_id) "
                "WHERE o.customer_name = %s ORDER BY h.order_id, h.id",
                (customer,),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    walk = Walk()
    history: list[tuple[str, float, float | None, str]] = []
    for index, (order_id, to_status, at, due_in, note) in enumerate(rows):
        history.append((to_status, at, due_in, note))
        if index + 1 == len(rows) or rows[index + 1][0] != order_id:
            _add_order(walk, history)
            history = []
    return walk


def _add_order(walk: Walk, history: list[tuple[str, float, float | None, str]]) -> None:
    created = history[0][1]
    last_status, last_at = history[-1][0], history[-1][1]
    walk.created.append(created)
    walk.statuses[last_status] = walk.statuses.get(last_status, 0) + 1
    walk.redrive_notes += sum("re-drive" in note for *_, note in history)
    if last_status in TERMINAL:
        walk.rested_at.append(last_at)
    if len(history) > 1 and history[1][0] == OrderStatus.PROCESSING.value:
        walk.first_step_s.append(history[1][1] - created)
    delays = []
    for (status, at, due_in, _), (_next, next_at, _, _) in zip(history, history[1:], strict=False):
        if status in DELAYED_FROM and due_in is not None:
            delay = due_in - STEP_DUE_MARGIN_S
            delays.append(delay)
            walk.step_lateness_s.append(next_at - (at + delay))
    walk.delays_s += delays
    if last_status == OrderStatus.DELIVERED.value:
        walk.delivered.append(last_at)
        walk.latencies_s.append(last_at - created)
        walk.delay_sums_s.append(sum(delays))
        walk.overheads_s.append(last_at - created - sum(delays))


def _steady_rates(walk: Walk, settle_s: float) -> tuple[float, float, float, int, int, str]:
    """Delivered/s and created/s over [first creation + settle, last creation]; for a run
    too short to have such a window, each over its own span."""
    first, last = min(walk.created), max(walk.created)
    begin = first + settle_s
    if last - begin >= settle_s:
        length = last - begin
        delivered = sum(begin <= t < last for t in walk.delivered)
        created = sum(begin <= t < last for t in walk.created)
        window = f"steady window: {length:.0f} s from first creation + {settle_s:.1f} s to last creation"
        return delivered / length, created / length, length, delivered, created, window
    delivered_span = (max(walk.delivered) - min(walk.delivered)) if len(walk.delivered) > 1 else 0.0
    created_span = last - first
    return (
        (len(walk.delivered) - 1) / delivered_span if delivered_span else 0.0,
        (len(walk.created) - 1) / created_span if created_span else 0.0,
        created_span,
        len(walk.delivered),
        len(walk.created),
        "whole run (too short for a steady window)",
    )


def _most_in_flight(walk: Walk) -> int:
    """The most orders created and not yet at rest at one instant (still moving at the
    end count as in flight until then)."""
    events = sorted([(t, 1) for t in walk.created] + [(t, -1) for t in walk.rested_at])
    most = moving = 0
    for _, change in events:
        moving += change
        most = max(most, moving)
    return most


def _monitor_redrives(metrics_addr: str) -> float | None:
    """fulfillment_stale_orders_total{action="redriven"} from the monitor's /metrics, or
    None when it serves none."""
    if not metrics_addr:
        return None
    try:
        with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=3) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fulfillment_stale_orders_total" and sample.labels.get("action") == "redriven"
    )


def _ms(values: list[float], fraction: float) -> float:
    return round(percentile(sorted(values), fraction) * 1000, 1)


def _result(
    sizes: DelayedSizes,
    worker_args: list[str],
    intake: Intake,
    walk: Walk,
    counts: dict[str, int],
    sampler: _Sampler,
    worker_peak_mb: float,
    monitor_alive: bool,
    own_stack: bool,
    redriven_by_monitor: float | None,
) -> dict[str, Any]:
    delivered = walk.statuses.get("DELIVERED", 0)
    failed = walk.statuses.get("FAILED", 0)
    longest_delays = 3 * max(walk.delays_s, default=0.0)
    settle = longest_delays + 1.0
    delivered_rate, created_rate, window_s, delivered_in, created_in, window = (
        _steady_rates(walk, settle) if walk.created and walk.delivered else (0.0, 0.0, 0.0, 0, 0, "none")
    )
    share = ratio(delivered_rate, created_rate)
    overhead = summarize(walk.overheads_s, intake.sent - delivered, window_s, count=delivered_in)
    system = RunStats(
        overhead.count, overhead.errors, window_s, delivered_rate,
        overhead.p50_ms, overhead.p95_ms, overhead.p99_ms,
    )
    creates = summarize(intake.latencies_s, intake.errors, window_s, count=created_in)
    limit = RunStats(
        creates.count, creates.errors, window_s, created_rate, creates.p50_ms, creates.p95_ms, creates.p99_ms,
    )
    worker_command = " ".join(worker_args[worker_args.index("worker") :])
    worker_command = worker_command.split(" --liveness-file")[0]
    redrives = int(redriven_by_monitor or 0) + walk.redrive_notes
    checks: dict[str, Any] = {
        "orders sent": intake.sent,
        "rejected at intake": intake.errors,
        "delivered": delivered,
        "failed": failed,
        "still moving": intake.sent - intake.errors - counts["at rest"],
        "re-driven by the monitor (its counter)": (
            "no /metrics" if redriven_by_monitor is None else int(redriven_by_monitor)
        ),
        "transitions noted as re-drives": walk.redrive_notes,
        "most orders in flight": _most_in_flight(walk),
        "drawn step delays s (min-max)": (
            f"{min(walk.delays_s):.2f}-{max(walk.delays_s):.2f}" if walk.delays_s else "-"
        ),
        "intake send lag max ms": round(intake.max_send_lag_ms, 1),
        "last delivery after last creation s": (
            round(max(walk.delivered) - max(walk.created), 1) if walk.delivered else "-"
        ),
        "worker peak RSS per process MB": round(worker_peak_mb, 1),
        "redis: the stack's db, peak of MEMORY USAGE summed over its keys MB": round(
            sampler.redis_db_peak_bytes / 2**20, 2
        ),
        "redis: whole server used_memory, peak sampled (shared) MB": round(
            sampler.redis_server_peak_used_bytes / 2**20, 1
        ),
    }
    verdicts = {
        "every order DELIVERED": delivered == intake.sent,
        "no order FAILED": failed == 0,
        "no order re-driven by the monitor": redrives == 0,
    }
    if own_stack:
        verdicts["monitor ran throughout"] = monitor_alive
    return {
        "what": f"{intake.sent} orders created open-loop at {sizes.rate:g}/s (CreateOrder), "
        + (
            f"step delays {Settings.step_delay_min_s:g}-{Settings.step_delay_max_s:g} s, walked to "
            f"DELIVERED by `{worker_command}` (as `up` runs it) with the stale monitor running; "
            if own_stack
            else "walked to DELIVERED by the running stack's worker, at its step delays; "
        )
        + "latency = lifecycle overhead per order (creation -> DELIVERED minus its drawn step delays)",
        "limit": f"the intake over the same window ({window}); latency = the CreateOrder call",
        "unit": "delivered/s",
        "rows": [
            {
                "case": f"{intake.sent} orders at {sizes.rate:g}/s",
                "system": system.as_dict(),
                "limit": limit.as_dict(),
                "ratio": round(share, 4),
            }
        ],
        "lifecycle": {
            "intake_rate_per_s": sizes.rate,
            "steady_window_s": round(window_s, 1),
            "overhead_p50_ms": _ms(walk.overheads_s, 0.5),
            "overhead_p99_ms": _ms(walk.overheads_s, 0.99),
            "overhead_max_ms": round(max(walk.overheads_s, default=0.0) * 1000, 1),
            "creation_to_delivered_p50_ms": _ms(walk.latencies_s, 0.5),
            "creation_to_delivered_p99_ms": _ms(walk.latencies_s, 0.99),
            "drawn_delays_sum_p50_ms": _ms(walk.delay_sums_s, 0.5),
            "drawn_delays_sum_p99_ms": _ms(walk.delay_sums_s, 0.99),
            "first_step_p50_ms": _ms(walk.first_step_s, 0.5),
            "first_step_p99_ms": _ms(walk.first_step_s, 0.99),
            "delayed_step_lateness_p50_ms": _ms(walk.step_lateness_s, 0.5),
            "delayed_step_lateness_p99_ms": _ms(walk.step_lateness_s, 0.99),
            "most_in_flight": _most_in_flight(walk),
            "worker_peak_rss_mb": round(worker_peak_mb, 1),
            "worker_processes": list(sampler.worker_processes.values()),
            "redis_db_peak_mb": round(sampler.redis_db_peak_bytes / 2**20, 3),
            "redis_server_used_memory_peak_sampled_mb": round(
                sampler.redis_server_peak_used_bytes / 2**20, 1
            ),
            "redis_server_used_memory_at_start_mb": round(sampler.redis_server_used_at_start / 2**20, 1),
        },
        "checks": checks,
        "verdicts": verdicts,
        "targets": [
            target(
                "lifecycle-delayed delivered/s of the intake rate", f"100% +-{RATE_TOLERANCE:.0%}",
                share * 100, abs(share - 1) <= RATE_TOLERANCE, "%",
            ),
            target(
                "lifecycle-delayed overhead p99", f"<= {OVERHEAD_P99_LIMIT_MS:,.0f} ms", system.p99_ms,
                0 < system.p99_ms <= OVERHEAD_P99_LIMIT_MS, "ms",
            ),
            target(
                "lifecycle-delayed worker peak RSS per process", f"<= {MEMORY_LIMIT_MB} MB", worker_peak_mb,
                0 < worker_peak_mb <= MEMORY_LIMIT_MB, "MB",
            ),
        ],
    }
