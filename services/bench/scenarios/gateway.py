"""gateway: CreateOrder as HTTP/JSON through Envoy's transcoder beside the same load sent
as native gRPC straight to the orders service (same concurrency, same kind of bodies)."""

from __future__ import annotations

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
from services.bench.http1 import HttpPool, json_body
from services.bench.stats import RunStats, closed_loop
from services.common.auth.principal import Role
from services.common.tls import channel_credentials


async def run(ctx: ScenarioContext) -> dict[str, Any]:
    env, sizes = ctx.environment, ctx.sizes
    env.start_services()
    env.start_gateway()
    credentials = channel_credentials(env.settings)
    products = await seed_products(
        env.settings.inventory_addr, f"{ctx.tag}-gw", 50, 1_000_000, credentials,
        env.bearer(Role.ADMIN),
    )
    customer_bearer = env.bearer(Role.CUSTOMER)
    customer = f"bench-{ctx.tag}-gw"
    concurrency = sizes.gateway_concurrency
    channels = open_channels(env.settings.orders_addr, 8, credentials)
    calls = raw_calls(channels, CREATE_ORDER, customer_bearer)
    authorization = customer_bearer[0][1] if customer_bearer else ""
    pool = HttpPool("127.0.0.1", env.settings.gateway_port, concurrency, authorization)

    async def grpc_create(index: int) -> bool:
        request = order_request(ctx.rng, products, customer, uuid.uuid4().hex)
        await calls[index % len(calls)](request.SerializeToString(), timeout=10)
        return True

    async def http_create(index: int) -> bool:
        request = order_request(ctx.rng, products, customer, uuid.uuid4().hex)
        status, _ = await pool.post("/v1/orders", json_body(request))
        return status == 200

    async def measure(call: Any, label: str, seconds: float) -> RunStats:
        task, advance = ctx.task(label, total=None)
        stats = await closed_loop(
            call,
            concurrency=concurrency,
            duration_s=seconds,
            max_requests=sizes.gateway_max_requests,
            on_progress=advance,
        )
        ctx.finish(task)
        return stats

    try:
        warm = max(0.2, sizes.gateway_seconds / 6)
        await measure(grpc_create, "gateway: gRPC warm-up", warm)
        await measure(http_create, "gateway: HTTP warm-up", warm)
        direct = await measure(grpc_create, f"gateway: direct gRPC c={concurrency}", sizes.gateway_seconds)
        http = await measure(http_create, f"gateway: HTTP via Envoy c={concurrency}", sizes.gateway_seconds)
    finally:
        await close_channels(channels)
        await pool.close()
    share = ratio(http.throughput, direct.throughput)
    return {
        "what": f"CreateOrder over HTTP/JSON through Envoy, {concurrency} keep-alive connections",
        "limit": "the same load as native gRPC straight to the orders service",
        "unit": "orders/s",
        "rows": [
            {
                "case": f"c={concurrency}",
                "system": http.as_dict(),
                "limit": direct.as_dict(),
                "ratio": round(share, 3),
            }
        ],
        "verdicts": {"no HTTP errors": http.errors == 0},
        "targets": [target("gateway HTTP share of direct gRPC", ">= 80%", share * 100, share >= 0.8, "%")],
    }
