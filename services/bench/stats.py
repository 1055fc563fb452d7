"""Closed-loop load and the figures every scenario reports."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RunStats:
    """One measured run: `count` operations in `duration_s`, latencies in milliseconds."""

    count: int
    errors: int
    duration_s: float
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list; 0 when it is empty."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def summarize(latencies_s: list[float], errors: int, duration_s: float, count: int | None = None) -> RunStats:
    ordered = sorted(latencies_s)
    done = len(ordered) if count is None else count
    return RunStats(
        count=done,
        errors=errors,
        duration_s=duration_s,
        throughput=done / duration_s if duration_s > 0 else 0.0,
        p50_ms=percentile(ordered, 0.50) * 1000,
        p95_ms=percentile(ordered, 0.95) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
    )


async def closed_loop(
    call: Callable[[int], Awaitable[bool]],
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int,
    on_progress: Callable[[int], None] | None = None,
) -> RunStats:
    """`concurrency` callers, each sending its next request as soon as the last returned,
    until `duration_s` has passed or `max_requests` were sent. `call(i)` answers whether
    request i succeeded; an exception counts as an error. Only successes count as done."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    started = time.perf_counter()
    deadline = started + duration_s

    async def caller() -> None:
        nonlocal errors, issued
        while issued < max_requests and time.perf_counter() < deadline:
            index = issued
            issued += 1
            sent = time.perf_counter()
            try:
                ok = await call(index)
            except Exception:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - sent)
            else:
                errors += 1
            if on_progress is not None:
                on_progress(1)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return summarize(latencies, errors, time.perf_counter() - started)
