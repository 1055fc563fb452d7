"""create: unary CreateOrder (1-3 items, a fresh request_id each) at several concurrency
levels, beside a bare echo server of the same server model sent the same bytes."""

from __future__ import annotations

import sys
import uuid
from typing import Any

from services.bench.clients import (
    CREATE_ORDER,
    close_channels,
    open_channels,
    order_request,
    raw_calls,
    seed_products,
)
from services.bench.context import ScenarioContext, ratio, target
from services.bench.echo_server import METHOD as ECHO
from services.bench.stats import RunStats, closed_loop
from services.common.auth.principal import Role
from services.common.tls import channel_credentials
from services.devtools.stores import free_port
from services.stack_parts import grpc_serving

CHANNELS = 8


async def run(ctx: ScenarioContext) -> dict[str, Any]:
    env = ctx.environment
    env.start_services()
    echo_addr = f"127.0.0.1:{free_port()}"
    env.start(
        "echo",
        [sys.executable, "-m", "services.bench.echo_server", echo_addr, str(env.settings.server_processes)],
        grpc_serving(echo_addr),
        helper=True,
    )
    credentials = channel_credentials(env.settings)
    products = await seed_products(
        env.settings.inventory_addr, f"{ctx.tag}-create", 50, 1_000_000, credentials,
        env.bearer(Role.ADMIN),
    )
    customer = f"bench-{ctx.tag}-create"
    orders_channels = open_channels(env.settings.orders_addr, CHANNELS, credentials)
    echo_channels = open_channels(echo_addr, CHANNELS)
    # Orders placed as a customer would, its token verified by the server on every call;
    # the echo server is the bare limit, with no authentication.
    create_calls = raw_calls(orders_channels, CREATE_ORDER, env.bearer(Role.CUSTOMER))
    echo_calls = raw_calls(echo_channels, ECHO)

    def request_bytes() -> bytes:
        return order_request(ctx.rng, products, customer, uuid.uuid4().hex).SerializeToString()

    async def measure(calls: list, concurrency: int, seconds: float, label: str) -> RunStats:
        async def call(index: int) -> bool:
            await calls[index % len(calls)](request_bytes(), timeout=10)
            return True

        task, advance = ctx.task(label, total=None)
        stats = await closed_loop(
            call,
            concurrency=concurrency,
            duration_s=seconds,
            max_requests=ctx.sizes.create_max_requests,
            on_progress=advance,
        )
        ctx.finish(task)
        return stats

    try:
        # At the highest level, so that every connection the servers will use is open and
        # has prepared its statements before anything is measured.
        warm, busiest = max(0.2, ctx.sizes.create_seconds / 6), max(ctx.sizes.create_levels)
        await measure(create_calls, busiest, warm, "create: warm-up")
        await measure(echo_calls, busiest, warm, "echo: warm-up")
        rows = []
        for level in ctx.sizes.create_levels:
            system = await measure(create_calls, level, ctx.sizes.create_seconds, f"create c={level}")
            limit = await measure(echo_calls, level, ctx.sizes.create_seconds, f"echo c={level}")
            rows.append(
                {
                    "case": f"c={level}",
                    "concurrency": level,
                    "system": system.as_dict(),
                    "limit": limit.as_dict(),
                    "ratio": round(ratio(system.throughput, limit.throughput), 3),
                }
            )
    finally:
        await close_channels(orders_channels)
        await close_channels(echo_channels)
        env.stop("echo")
    # The targets are set at c=32; a smaller run is judged at its highest level.
    judged = next((r for r in rows if r["concurrency"] == 32), rows[-1])
    level, figures = judged["concurrency"], judged["system"]
    tail_over_echo = round(ratio(figures["p99_ms"], judged["limit"]["p99_ms"]), 2)
    targets = [
        target(
            f"create orders/s at c={level}",
            ">= 1000",
            figures["throughput"],
            figures["throughput"] >= 1000,
            "orders/s",
        ),
        target(f"create p99 at c={level}", "< 50 ms", figures["p99_ms"], figures["p99_ms"] < 50, "ms"),
        # Issue 15's, as ratios to the echo server measured beside it.
        target(
            f"create share of the echo limit at c={level}", ">= 33%", judged["ratio"] * 100,
            judged["ratio"] >= 0.33, "%",
        ),
        target(
            f"create p99 over the echo's p99 at c={level}", "<= 3x", tail_over_echo,
            tail_over_echo <= 3, "x",
        ),
    ]
    return {
        "what": "unary CreateOrder, 1-3 items, fresh request_id",
        "limit": "bare grpc.aio echo server, same bootstrap and process count, same request bytes",
        "unit": "orders/s",
        "rows": rows,
        "targets": targets,
    }
