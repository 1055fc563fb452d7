# mypy: disallow-untyped-calls=False, disallow-subclassing-any=False
# (opentelemetry-instrumentation-grpc declares no types)
"""The server span per RPC: opentelemetry-instrumentation-grpc's aio interceptor, with two
changes. Each method's handler is wrapped once (the official one builds a new handler on
every call; here a call costs a dict lookup, as in the error mapping). And a handler that
writes its responses with context.write (a coroutine, as grpc.health's Watch is) keeps
working: the official one iterates every response-streaming handler as an async
generator, which fails such a handler."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from opentelemetry.instrumentation.grpc._aio_server import OpenTelemetryAioServerInterceptor
from opentelemetry.instrumentation.grpc._server import _wrap_rpc_behavior
from opentelemetry.trace import Tracer

from services.common.handlers import WrappedHandlers

Handler: TypeAlias = grpc.RpcMethodHandler


class ServerTracingInterceptor(OpenTelemetryAioServerInterceptor):
    def __init__(self, tracer: Tracer, filter_: Callable[[grpc.HandlerCallDetails], bool]) -> None:
        super().__init__(tracer, filter_=filter_)
        self._handlers = WrappedHandlers()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None or (self._filter is not None and not self._filter(handler_call_details)):
            return handler
        method = handler_call_details.method

        # The span reads only the method's name from the details; the caller's context,
        # peer and metadata come from the servicer context of each call.
        def traced(behavior: Callable[..., Any], _request_streaming: bool, response_streaming: bool) -> Any:
            if response_streaming and inspect.isasyncgenfunction(behavior):
                return self._intercept_aio_server_stream(behavior, handler_call_details)
            return self._intercept_aio_server_unary(behavior, handler_call_details)

        return self._handlers.get(method, handler, lambda h: _wrap_rpc_behavior(h, traced))
