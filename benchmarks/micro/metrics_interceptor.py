"""What the metrics interceptor costs per RPC, measured two ways.

1. The interceptor's own work, isolated: an echo handler called many times in a loop
   through MetricsInterceptor (intercept_service, its wrapper, two clock reads, the
   histogram and the counter) and without it. Precise, and what the interceptor adds to
   every RPC's server CPU.
2. End to end: a grpc.aio echo server built by start_server with metrics on and off, in a
   process of its own, a client process making many unary calls; the server process's CPU
   per call from /proc. Real, but on a shared machine its noise (tens of us) is larger
   than the difference, which is why (1) is the figure to quote.

Rounds alternate on and off, so drift falls on both; medians are shown.

    uv run python benchmarks/micro/metrics_interceptor.py [rpc_calls_per_round] [rounds]
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

SERVICE = "fulfillment.bench.v1.Echo"
METHOD = f"/{SERVICE}/Echo"
_TICKS = os.sysconf("SC_CLK_TCK")


async def _echo(request: bytes, _context: Any) -> bytes:
    return request


class _CallDetails(NamedTuple):
    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


class _Context:
    """What the interceptor asks of grpc.aio's context when a call succeeds."""

    def code(self) -> None:
        return None


async def _isolated_us(through_interceptor: bool, calls: int) -> float:
    import grpc

    from services.common.metrics.grpc_server import MetricsInterceptor

    handler = grpc.unary_unary_rpc_method_handler(_echo)

    async def continuation(_details: Any) -> grpc.RpcMethodHandler:
        return handler

    intercept = MetricsInterceptor().intercept_service if through_interceptor else None
    details, context = _CallDetails(METHOD, ()), _Context()
    started = time.perf_counter()
    for _ in range(calls):
        chosen = await (intercept(continuation, details) if intercept else continuation(details))
        await chosen.unary_unary(b"x", context)
    return (time.perf_counter() - started) / calls * 1e6


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _serve(metrics: bool, ports: Any, stop: Any) -> None:
    import grpc

    from services.common.server import ServiceParts, run_event_loop, start_server

    def register(server: grpc.aio.Server) -> Sequence[str]:
        handler = grpc.unary_unary_rpc_method_handler(_echo)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),))
        return (SERVICE,)

    async def main() -> None:
        running = await start_server("127.0.0.1:0", ServiceParts(register=register), metrics=metrics)
        ports.put(running.port)
        await asyncio.to_thread(stop.wait)
        await running.stop(0)

    run_event_loop(main())


async def _calls(port: int, calls: int) -> None:
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        echo = channel.unary_unary(METHOD)
        for _ in range(calls):
            await echo(b"x")


def _server_cpu_per_call_us(metrics: bool, calls: int) -> float:
    context = multiprocessing.get_context("spawn")
    ports, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(metrics, ports, stop))
    server.start()
    assert server.pid is not None
    try:
        port = ports.get(timeout=60)
        asyncio.run(_calls(port, 500))  # warm up: connection, method wrapping, label children
        started = _cpu_seconds(server.pid)
        asyncio.run(_calls(port, calls))
        return (_cpu_seconds(server.pid) - started) / calls * 1e6
    finally:
        stop.set()
        server.join(10)
        if server.is_alive():
            server.kill()


def _medians(measure: Any, rounds: int) -> tuple[float, float, list[float], list[float]]:
    on, off = [], []
    for _ in range(rounds):
        on.append(measure(True))
        off.append(measure(False))
    return statistics.median(on), statistics.median(off), on, off


def _show(title: str, result: tuple[float, float, list[float], list[float]]) -> None:
    med_on, med_off, on, off = result
    print(title)
    print(f"  with the interceptor     {med_on:7.2f} us   rounds: {', '.join(f'{v:.2f}' for v in on)}")
    print(f"  without                  {med_off:7.2f} us   rounds: {', '.join(f'{v:.2f}' for v in off)}")
    print(f"  the interceptor          {med_on - med_off:+7.2f} us per RPC")


def main(argv: list[str]) -> int:
    calls = int(argv[0]) if argv else 10_000
    rounds = int(argv[1]) if len(argv) > 1 else 5
    isolated_calls = 100_000
    _show(
        f"1. echo handler called {isolated_calls} times per round, {rounds} rounds (wall time per call):",
        _medians(lambda on: asyncio.run(_isolated_us(on, isolated_calls)), rounds),
    )
    _show(
        f"2. echo RPC end to end, server process CPU per call, {calls} calls per round, {rounds} rounds:",
        _medians(lambda on: _server_cpu_per_call_us(on, calls), rounds),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
