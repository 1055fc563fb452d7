"""What the server interceptors (metrics, tracing, authentication, error mapping) share:
a method's handler wrapped once, and a handler rebuilt around a new behaviour.

grpc.aio asks each interceptor for a method's handler on every call, and the continuation
answers the same handler object for a method every time; so each interceptor wraps a
method's handler on its first call and answers the wrapped one afterwards, at the cost of
a dict lookup per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Behavior = Callable[..., Any]


class WrappedHandlers:
    """Each method's handler, wrapped once (again if the continuation ever answers another)."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def get(
        self,
        method: str,
        handler: grpc.RpcMethodHandler,
        wrap: Callable[[grpc.RpcMethodHandler], grpc.RpcMethodHandler],
    ) -> grpc.RpcMethodHandler:
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = wrap(handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def with_behavior(
    handler: grpc.RpcMethodHandler, wrap: Callable[[Behavior], Behavior]
) -> grpc.RpcMethodHandler:
    """The same handler (same kind, same (de)serializers: None when the error-mapping
    interceptor decodes requests itself) with its behaviour wrapped."""
    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary), **options)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream), **options)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary), **options)
    return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream), **options)
