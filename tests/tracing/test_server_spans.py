"""Every RPC of a server built by start_server is a server span when tracing is on: child
of the caller's traceparent metadata, named after the method, with the code the caller
got; handlers that yield their responses and handlers that write them both keep working.
Health checks are left out (probes would bury the orders' spans)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.common.errors import NotFound
from services.common.server import ServiceParts
from tests.support import BackgroundServer

pytestmark = pytest.mark.integration

SERVICE = "fulfillment.test.v1.Traced"
TRACE_ID = "5b8efff798038103d269b633813fc60c"
CALLER_SPAN_ID = "eee19b7ec3c1b174"
METADATA = (("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"),)


async def unary(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    if request == b"missing":
        raise NotFound("no such thing")
    return request


async def yielded(request: bytes, _context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield request
    yield request


async def written(request: bytes, context: grpc.aio.ServicerContext) -> None:
    await context.write(request)
    await context.write(request)


def register(server: grpc.aio.Server) -> Sequence[str]:
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Yielded": grpc.unary_stream_rpc_method_handler(yielded),
        "Written": grpc.unary_stream_rpc_method_handler(written),
    }),))
    return (SERVICE,)


async def parts() -> ServiceParts:
    return ServiceParts(register=register)


async def calls(addr: str) -> None:
    async with grpc.aio.insecure_channel(addr) as channel:
        assert await channel.unary_unary(f"/{SERVICE}/Unary")(b"a", metadata=METADATA) == b"a"
        for method in ("Yielded", "Written"):
            call = channel.unary_stream(f"/{SERVICE}/{method}")(b"b", metadata=METADATA)
            assert [r async for r in call] == [b"b", b"b"]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(f"/{SERVICE}/Unary")(b"missing", metadata=METADATA)
        assert refused.value.code() is grpc.StatusCode.NOT_FOUND
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())


def test_each_rpc_is_a_server_span_under_the_callers(spans: InMemorySpanExporter) -> None:
    with BackgroundServer(parts) as server:
        asyncio.run(calls(server.addr))
    finished = spans.get_finished_spans()
    assert sorted(s.name for s in finished) == [
        f"/{SERVICE}/Unary", f"/{SERVICE}/Unary", f"/{SERVICE}/Written", f"/{SERVICE}/Yielded",
    ]
    for span in finished:
        assert span.kind is SpanKind.SERVER and span.parent is not None and span.context is not None
        assert f"{span.context.trace_id:032x}" == TRACE_ID
        assert f"{span.parent.span_id:016x}" == CALLER_SPAN_ID
    # The code the caller got; as the semantic conventions have it, a NOT_FOUND is the
    # caller's error, not the server's, so the span's status stays unset.
    codes = sorted((s.attributes or {})["rpc.grpc.status_code"] for s in finished)
    assert codes == [0, 0, 0, 5]
    assert all(s.status.status_code is StatusCode.UNSET for s in finished)
