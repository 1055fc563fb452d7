# mypy: disallow-untyped-calls=False
# (the instrumentation packages declare no types; their factories are called here only)
"""The OpenTelemetry SDK and instrumentation of a process that traces. Imported only when
tracing is on (services.common.tracing), so a process without it never loads OTel."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, client_interceptor
from opentelemetry.instrumentation.grpc.filters import negate, service_name
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
from opentelemetry.instrumentation.grpc.version import __version__ as grpc_instrumentation_version
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from services.common.tracing.config import TracingConfig

# Probes ask for health every few seconds: spans of those would only bury the orders'.
_NOT_HEALTH = negate(service_name("grpc.health.v1.Health"))
_KINDS = {
    "internal": trace.SpanKind.INTERNAL,
    "producer": trace.SpanKind.PRODUCER,
    "client": trace.SpanKind.CLIENT,
}


def build_provider(service: str, config: TracingConfig) -> TracerProvider:
    """A provider for `service` exporting in batches (OTEL_BSP_* tune them) to each exporter."""
    # OTEL_RESOURCE_ATTRIBUTES add to the resource; its service.name is ours.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    for name in config.exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    return provider


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    # It reads its endpoint, headers, timeout, compression and certificates from OTEL_*.
    return OTLPSpanExporter()


class Tracing:
    """What a process that traces uses: its provider, a tracer, the instrumentation."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("fulfillment")
        self._undo: list[Callable[[], None]] = []

    def server_interceptor(self) -> grpc.aio.ServerInterceptor:
        from services.common.tracing.grpc_server import ServerTracingInterceptor

        tracer = self.provider.get_tracer(
            "opentelemetry.instrumentation.grpc", grpc_instrumentation_version,
            schema_url="https://opentelemetry.io/schemas/1.11.0",
        )
        return ServerTracingInterceptor(tracer, _NOT_HEALTH)

    def aio_client_interceptors(self) -> list[grpc.aio.ClientInterceptor]:
        return list(aio_client_interceptors(tracer_provider=self.provider, filter_=_NOT_HEALTH))

    def intercept_channel(self, channel: grpc.Channel) -> grpc.Channel:
        traced: grpc.Channel = intercept_channel(
            channel, client_interceptor(tracer_provider=self.provider, filter_=_NOT_HEALTH)
        )
        return traced

    def instrument_asyncpg(self) -> None:
        """Every statement on asyncpg: SQLAlchemy's (prepared statements) and the statement
        pool's (Connection.fetch), each one client span."""
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        instrumentor = AsyncPGInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            return
        instrumentor.instrument(tracer_provider=self.provider)
        self._undo.append(instrumentor.uninstrument)

    def instrument_celery_worker(self) -> None:
        """A consumer span per task, its parent read from the message headers; a producer
        span per task the worker publishes, its context written into the headers."""
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        instrumentor = CeleryInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            return
        instrumentor.instrument(tracer_provider=self.provider)
        self._undo.append(instrumentor.uninstrument)

    @contextmanager
    def span(self, name: str, kind: str, attributes: dict[str, Any]) -> Iterator[trace.Span]:
        with self.tracer.start_as_current_span(name, kind=_KINDS[kind], attributes=attributes) as span:
            yield span

    def current_span(self) -> trace.Span:
        return trace.get_current_span()

    def inject(self, carrier: MutableMapping[str, Any]) -> None:
        """The current span's context as W3C trace context entries (traceparent, tracestate)."""
        inject(carrier)

    def uninstrument(self) -> None:
        while self._undo:
            self._undo.pop()()


def active_span_ids() -> dict[str, str]:
    """trace_id and span_id of the active span, as the trace shows them; {} outside one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


def set_global_provider(provider: TracerProvider) -> None:
    trace.set_tracer_provider(provider)
