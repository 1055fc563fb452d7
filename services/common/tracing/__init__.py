"""Tracing with OpenTelemetry: one trace per order, across the gateway, orders, the worker
and inventory, configured only through the standard OTEL_* variables (config.py says when
it is on).

Each process calls `configure_tracing` once, after any fork (a forked server process, a
prefork pool child), and `shutdown_tracing` on its way out, which exports what is left.
Off, nothing is installed: no SDK, no interceptor, no instrumentation, and OTel is not even
imported; every function here is then a check of one module variable.
"""

from __future__ import annotations

import contextlib
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

from services.common import logs
from services.common.tracing.config import SERVICE_NAMES, TracingConfig

if TYPE_CHECKING:
    import grpc
    from opentelemetry.sdk.trace import TracerProvider

    from services.common.tracing.sdk import Tracing

__all__ = [
    "SERVICE_NAMES",
    "TracingConfig",
    "aio_client_interceptors",
    "configure_tracing",
    "current_span",
    "inject_trace_context",
    "instrument_asyncpg",
    "instrument_celery_worker",
    "server_interceptors",
    "shutdown_tracing",
    "span",
    "traced_channel",
    "tracing_enabled",
    "use_provider",
]

_tracing: Tracing | None = None


class SpanLike(Protocol):
    def set_attribute(self, key: str, value: Any) -> object: ...


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass


_NO_SPAN = _NoSpan()


def configure_tracing(part: str, config: TracingConfig | None = None) -> bool:
    """Trace this process as `part` (orders, inventory, worker, monitor) when the OTEL_*
    variables say so; True when it does. Once per process; later calls change nothing."""
    if _tracing is not None:
        return True
    config = config or TracingConfig.from_env()
    if not config.enabled:
        return False
    from services.common.tracing import sdk

    provider = sdk.build_provider(SERVICE_NAMES.get(part, f"fulfillment-{part}"), config)
    sdk.set_global_provider(provider)
    use_provider(provider)
    return True


def use_provider(provider: TracerProvider | None) -> None:
    """Trace with `provider` (tests give one with an in-memory exporter); None stops
    tracing here and takes back the instrumentation (not the global provider, which the
    OTel API lets a process set only once)."""
    global _tracing
    if _tracing is not None:
        _tracing.uninstrument()
        _tracing = None
        logs.set_trace_fields(None)
    if provider is None:
        return
    from services.common.tracing import sdk

    _tracing = sdk.Tracing(provider)
    logs.set_trace_fields(sdk.active_span_ids)


def shutdown_tracing() -> None:
    """Export the spans still buffered and stop the exporter (a server's stop, the
    worker's and the monitor's exit). The process traces nothing afterwards."""
    if _tracing is None:
        return
    provider = _tracing.provider
    use_provider(None)
    provider.shutdown()


def tracing_enabled() -> bool:
    return _tracing is not None


def server_interceptors() -> tuple[grpc.aio.ServerInterceptor, ...]:
    """A server span per RPC, child of the caller's (its traceparent metadata)."""
    return () if _tracing is None else (_tracing.server_interceptor(),)


def aio_client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """A client span per call, its context sent as traceparent metadata."""
    return [] if _tracing is None else _tracing.aio_client_interceptors()


def traced_channel(channel: grpc.Channel) -> grpc.Channel:
    """The sync channel with a client span per call (the worker's and monitor's calls)."""
    return channel if _tracing is None else _tracing.intercept_channel(channel)


def instrument_asyncpg() -> None:
    """A span per statement on asyncpg, in a process that traces."""
    if _tracing is not None:
        _tracing.instrument_asyncpg()


def instrument_celery_worker() -> None:
    if _tracing is not None:
        _tracing.instrument_celery_worker()


def span(name: str, kind: str = "internal", **attributes: Any) -> contextlib.AbstractContextManager[SpanLike]:
    """A span around a block, child of the current one; kind: internal, producer, client."""
    if _tracing is None:
        return contextlib.nullcontext(_NO_SPAN)
    return _tracing.span(name, kind, attributes)


def current_span() -> SpanLike:
    """The active span, to add attributes to (a span another instrumentation made)."""
    return _NO_SPAN if _tracing is None else _tracing.current_span()


def inject_trace_context(headers: MutableMapping[str, Any]) -> None:
    """Write the current context into message headers (traceparent), so that whoever
    handles the message continues this trace."""
    if _tracing is not None:
        _tracing.inject(headers)
