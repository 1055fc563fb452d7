"""A real Envoy (`fulfillment gateway`) in front of a stand-in service that records the
metadata of each call: without tracing configured it hands the HTTP caller's traceparent
to the service untouched; with an OTLP endpoint it makes a span of its own, child of the
caller's, exports it, and the service's parent is that span."""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as inventory_pb2
from services.devtools.otlp_sink import OtlpSink
from services.stack_parts import http_answers
from tests.support import Process, free_port, fulfillment_command, wait_until

pytestmark = pytest.mark.e2e

GET_PRODUCT = "/fulfillment.inventory.v1.InventoryService/GetProduct"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"


class RecordingInventory(grpc.GenericRpcHandler):
    """GetProduct answers; the traceparent metadata of every call is kept."""

    def __init__(self) -> None:
        self.traceparents: list[str | None] = []
        self._lock = threading.Lock()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if details.method != GET_PRODUCT:
            return None

        def handle(
            request: inventory_pb2.GetProductRequest, context: grpc.ServicerContext
        ) -> inventory_pb2.Product:
            with self._lock:
                self.traceparents.append(dict(context.invocation_metadata()).get("traceparent"))
            return inventory_pb2.Product(product_id=request.product_id, name="probe", price="1.00")

        return grpc.unary_unary_rpc_method_handler(
            handle,
            request_deserializer=inventory_pb2.GetProductRequest.FromString,
            response_serializer=inventory_pb2.Product.SerializeToString,
        )


@contextlib.contextmanager
def gateway_in_front_of(inventory: RecordingInventory, otel: dict[str, str], log: Path) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[inventory])
    addr = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FULFILLMENT_", "GATEWAY_"))},
        "FULFILLMENT_AUTH": "off", "INVENTORY_ADDR": addr, "ORDERS_ADDR": addr,
        "GATEWAY_PORT": str(port), "GATEWAY_ADMIN_PORT": str(free_port()), **otel,
    }
    process = Process(fulfillment_command("gateway"), env, log)
    try:
        answers = http_answers(f"http://127.0.0.1:{port}/")
        wait_until(lambda: answers() or process.popen.poll() is not None, timeout=30, what="the gateway")
        assert process.popen.poll() is None, process.output()[-3000:]
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop(timeout=15)
        server.stop(grace=None)


def get_product(gateway: str) -> None:
    request = urllib.request.Request(f"{gateway}/v1/products/7", headers={"traceparent": TRACEPARENT})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_without_tracing_the_callers_traceparent_reaches_the_service(tmp_path: Path) -> None:
    inventory = RecordingInventory()
    with gateway_in_front_of(inventory, {}, tmp_path / "gateway.log") as gateway:
        get_product(gateway)
    assert inventory.traceparents == [TRACEPARENT]


def test_with_an_endpoint_the_gateway_span_sits_between_caller_and_service(tmp_path: Path) -> None:
    inventory = RecordingInventory()
    with OtlpSink() as sink:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}
        with gateway_in_front_of(inventory, otel, tmp_path / "gateway.log") as gateway:
            get_product(gateway)
            # Envoy exports every 5 s (or after 5 spans).
            (span,) = wait_until(
                lambda: sink.spans(TRACE_ID), timeout=30, interval=0.2, what="the gateway's span"
            )
    assert span.service == "fulfillment-gateway"
    assert span.parent_span_id == CALLER_SPAN_ID and span.span_id != CALLER_SPAN_ID
    (received,) = inventory.traceparents
    assert received is not None
    version, trace_id, parent_id, _flags = received.split("-")
    assert (version, trace_id, parent_id) == ("00", TRACE_ID, span.span_id)
