"""The metrics interceptor start_server installs outermost on every server:
grpc_server_handled_total{grpc_service,grpc_method,grpc_code} and
grpc_server_handling_seconds{grpc_service,grpc_method}.

Outermost, so it also counts the calls the authentication interceptor refuses
(UNAUTHENTICATED, PERMISSION_DENIED). A stream is counted once, when it ends, with the
time it was open. A method the server does not have (UNIMPLEMENTED) is not counted: its
name comes from the caller and would make a series per guess.

The hot path is one dict lookup (the wrapped handler, per method), two clock reads, one
histogram observation and one counter increment on label children looked up once per
method and code; nothing is formatted per call.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from services.common.handlers import WrappedHandlers, with_behavior
from services.common.metrics.series import GrpcServerSeries, grpc_server_series

_OK = grpc.StatusCode.OK


class MethodSeries:
    """One method's label children: its latency histogram and a counter per code."""

    __slots__ = ("_handled", "_labels", "_by_code", "_latency")

    def __init__(self, series: GrpcServerSeries, method_path: str) -> None:
        service, _, method = method_path.lstrip("/").rpartition("/")
        self._handled: Counter = series.handled
        self._labels = (service, method)
        self._latency: Histogram = series.handling_seconds.labels(service, method)
        self._by_code: dict[grpc.StatusCode, Counter] = {_OK: series.handled.labels(service, method, "OK")}

    def record(self, code: grpc.StatusCode, seconds: float) -> None:
        self._latency.observe(seconds)
        counter = self._by_code.get(code)
        if counter is None:
            counter = self._by_code[code] = self._handled.labels(*self._labels, code.name)
        counter.inc()


def outcome_code(exc: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status an RPC that raised `exc` ends with."""
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED  # the caller went away (or the server is stopping)
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code  # context.abort: the deliberate status
    return grpc.StatusCode.UNKNOWN


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, series: GrpcServerSeries | None = None) -> None:
        self._series = series or grpc_server_series()
        self._handlers = WrappedHandlers()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        return self._handlers.get(
            method, handler,
            lambda h: with_behavior(
                h, lambda behavior: _observed(behavior, MethodSeries(self._series, method))
            ),
        )


def _observed(behavior: Callable[..., Any], series: MethodSeries) -> Callable[..., Any]:
    clock = time.perf_counter
    # grpc.aio tells a response generator from a coroutine that writes its responses
    # (grpc.health's Watch) by the function itself, so the wrapper keeps the kind.
    if inspect.isasyncgenfunction(behavior):

        async def observed_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = clock()
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as exc:
                series.record(outcome_code(exc, context), clock() - started)
                raise
            series.record(context.code() or _OK, clock() - started)

        return observed_stream

    async def observed(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = clock()
        try:
            result = behavior(request, context)
            # Servicers are async; a sync one (a generated base method) answers directly.
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            series.record(outcome_code(exc, context), clock() - started)
            raise
        series.record(context.code() or _OK, clock() - started)
        return result

    return observed
