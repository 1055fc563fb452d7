"""A small OTLP/gRPC trace collector: it keeps the spans it is sent, for tests, and
absorbs them for a benchmark with tracing on.

    python -m services.devtools.otlp_sink --port 4317
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 fulfillment bench create --quick

As a program it keeps no spans: it counts them per service and prints the counts every few
seconds. Not a trace backend: Jaeger (README: Observe it) is one.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector got it; ids in lowercase hex, as the trace shows them."""

    service: str
    name: str
    trace_id: str
    span_id: str
    # "" for a root span.
    parent_span_id: str
    kind: int
    attributes: dict[str, Any] = field(default_factory=dict)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Sequence[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def received_spans(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans = []
    for resource_spans in request.resource_spans:
        service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(ReceivedSpan(
                    service=service, name=span.name, trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(), parent_span_id=span.parent_span_id.hex(),
                    kind=span.kind, attributes=_attributes(span.attributes),
                ))
    return spans


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receive: Callable[[list[ReceivedSpan]], None]) -> None:
        self._receive = receive

    def Export(  # noqa: N802 - the generated servicer's method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._receive(received_spans(request))
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpSink:
    """An OTLP/gRPC TraceService on a loopback port (0: a free one), plaintext."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keep: bool = True) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._counts: Counter[str] = Counter()
        self._keep = keep
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self._receive), self._server)
        self.host = host
        self.port = self._server.add_insecure_port(f"{host}:{port}")

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://{self.host}:{self.port}"

    def _receive(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self._counts.update(span.service for span in spans)
            if self._keep:
                self._spans.extend(spans)

    def spans(self, trace_id: str | None = None) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self._spans if trace_id is None or s.trace_id == trace_id]

    def counts(self) -> dict[str, int]:
        """Spans received so far per service.name."""
        with self._lock:
            return dict(self._counts)

    def start(self) -> OtlpSink:
        self._server.start()
        return self

    def stop(self, grace: float = 1.0) -> None:
        self._server.stop(grace).wait(grace + 5)

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.devtools.otlp_sink",
        description="Receive OTLP/gRPC spans and count them per service (nothing is stored).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4317)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between count lines")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sink = OtlpSink(args.host, args.port, keep=False).start()
    print(f"otlp_sink: OTEL_EXPORTER_OTLP_ENDPOINT={sink.endpoint}", flush=True)
    last: dict[str, int] = {}
    try:
        while not stop.wait(args.every):
            counts = sink.counts()
            if counts != last:
                total = sum(counts.values())
                detail = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
                print(f"otlp_sink: {time.strftime('%H:%M:%S')} {total} spans ({detail})", flush=True)
                last = counts
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
