"""Every RPC of both services, public and internal (and the health and reflection services
every server carries), fuzzed over real gRPC: random typed requests built from the proto
descriptors, and bytes that are not (quite) a message.

Whatever arrives, the answer is deliberate: never INTERNAL, UNKNOWN or DATA_LOSS, never a
Python class name or a traceback in the message, and the servers stay healthy. Bytes that
do not decode as the request type are INVALID_ARGUMENT, in a stream too.
"""

from __future__ import annotations

import os

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as inventory_pb2
from services.common.proto.fulfillment.inventory.v1 import reservation_service_pb2 as reservation_pb2
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as lifecycle_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.auth_helpers import bearer_for
from tests.fuzz.conftest import FuzzTarget, Known
from tests.fuzz.strategies import Hints, corrupt_bytes, messages
from tests.raw_grpc import (
    SERVER_FAULT_CODES,
    RawResult,
    call_raw,
    leaked_internals,
    rpc_methods,
    strings_in,
)

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

INVENTORY_RPCS = rpc_methods(
    inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"],
    reservation_pb2.DESCRIPTOR.services_by_name["ReservationService"],
)
ORDERS_RPCS = rpc_methods(
    orders_pb2.DESCRIPTOR.services_by_name["OrderService"],
    lifecycle_pb2.DESCRIPTOR.services_by_name["OrderLifecycleService"],
)
# Registered by the shared server bootstrap in front of every service's own.
BOOTSTRAP_RPCS = rpc_methods(
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
)
RPCS = INVENTORY_RPCS + ORDERS_RPCS + BOOTSTRAP_RPCS
RPC_IDS = [f"{m.containing_service.name}.{m.name}" for m in RPCS]
# At most this many messages in a request stream, and responses read from a response
# stream (a watch of a live order runs until its deadline otherwise).
STREAM_LENGTH = 4
WATCHED_RESPONSES = 1

# 40 typed and 40 corrupt examples per RPC keep the package well under a minute on two
# cores; FULFILLMENT_FUZZ_EXAMPLES raises it for a longer hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("FULFILLMENT_FUZZ_EXAMPLES") or 40),
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _hints(known: Known) -> Hints:
    """Per field name (in any request), values that mean something to the services."""
    statuses = st.sampled_from(
        [value.number for value in orders_pb2.Order.Status.DESCRIPTOR.values if value.number]
    )
    short_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
    return {
        "product_id": st.sampled_from(known.product_ids),
        "product_ids": st.sampled_from(known.product_ids),
        "order_id": st.one_of(st.sampled_from(known.order_ids), st.uuids().map(str)),
        "page_token": st.sampled_from(["", *known.page_tokens]),
        "page_size": st.integers(0, 3),
        "quantity": st.integers(1, 3),
        "customer_name": st.sampled_from(["fuzz customer", "Ada", " Zoë ", "名前", ""]),
        "request_id": st.one_of(st.uuids().map(str), st.sampled_from(["", "fuzz-repeated"])),
        "sku": st.one_of(st.uuids().map(lambda u: f"fuzz-{u.hex[:12]}"), st.just("fuzz-taken-sku")),
        "name": short_text.map(lambda text: f"n{text}"),
        "description": short_text,
        "price": st.one_of(
            st.sampled_from(["1.00", "0.99", "1200.99", "0", "9999999999.99", "10000000000.00"]),
            st.from_regex(r"-?[0-9]{0,14}(\.[0-9]{0,4})?", fullmatch=True),
            st.sampled_from(["1e5", "NaN", "-0", "Infinity", " 1.00", "1,00", "٣.٠٠", "0x10"]),
        ),
        "initial_stock": st.integers(0, 1000),
        "stock_level": st.integers(0, 1000),
        "delta": st.integers(-3, 3),
        "status": st.one_of(st.just(0), statuses),
        "expected_status": statuses,
        "to_status": statuses,
        "then_statuses": statuses,
        "note": short_text,
        "reason": short_text,
        "next_step_due_in_seconds": st.floats(0, 3600),
        "limit": st.integers(0, 3),
        "stale_after_seconds": st.floats(0, 3600),
        "lease_seconds": st.floats(0.5, 60),
    }


def _channel(fuzz: FuzzTarget, method: MethodDescriptor) -> grpc.Channel:
    return fuzz.orders_channel if method in ORDERS_RPCS else fuzz.inventory_channel


def _send(fuzz: FuzzTarget, method: MethodDescriptor, payloads: list[bytes]) -> RawResult:
    watched = WATCHED_RESPONSES if method.server_streaming and not method.client_streaming else None
    # A valid token of a role allowed to call the method, so that the payload is what the
    # server judges (admin for the public RPCs, service for the internal ones).
    return call_raw(
        _channel(fuzz, method), method, payloads, timeout=30, max_responses=watched,
        metadata=bearer_for(fuzz.settings, method),
    )


def _assert_deliberate(method: MethodDescriptor, payloads: list[bytes], result: RawResult) -> None:
    said = f"{method.full_name} answered {result.code.name}: {result.details!r}"
    sent = _strings_sent(method, payloads)
    assert result.code not in SERVER_FAULT_CODES, said
    if method not in BOOTSTRAP_RPCS:
        # Every RPC of our own services is implemented; grpc.health's List may not be.
        assert result.code is not grpc.StatusCode.UNIMPLEMENTED, said
    assert not leaked_internals(result.details, sent), said
    if method.output_type is orders_pb2.BulkCreateOrderResult.DESCRIPTOR:
        for raw in result.responses:
            status = orders_pb2.BulkCreateOrderResult.FromString(raw).status
            answered = f"{method.full_name} result {status.code}: {status.message!r}"
            assert status.code not in {code.value[0] for code in SERVER_FAULT_CODES}, answered
            assert not leaked_internals(status.message, sent), answered


def _strings_sent(method: MethodDescriptor, payloads: list[bytes]) -> list[str]:
    request_class = message_factory.GetMessageClass(method.input_type)
    sent = []
    for raw in payloads:
        try:
            sent.extend(strings_in(request_class.FromString(raw)))
        except DecodeError:
            continue
    return sent


def _first_undecodable(method: MethodDescriptor, payloads: list[bytes]) -> int | None:
    request_class = message_factory.GetMessageClass(method.input_type)
    for index, raw in enumerate(payloads):
        try:
            request_class.FromString(raw)
        except DecodeError:
            return index
    return None


@pytest.mark.parametrize("method", RPCS, ids=RPC_IDS)
def test_typed_requests_get_a_deliberate_answer(fuzz: FuzzTarget, method: MethodDescriptor) -> None:
    requests = messages(method.input_type, _hints(fuzz.known))
    payloads = (
        st.lists(requests, min_size=1, max_size=STREAM_LENGTH)
        if method.client_streaming
        else requests.map(lambda request: [request])
    )

    @FUZZ
    @given(payloads)
    def answered_deliberately(requests: list) -> None:
        payloads = [request.SerializeToString() for request in requests]
        _assert_deliberate(method, payloads, _send(fuzz, method, payloads))

    answered_deliberately()
    fuzz.assert_healthy()


@pytest.mark.parametrize("method", RPCS, ids=RPC_IDS)
def test_raw_bytes_get_a_deliberate_answer_and_undecodable_ones_invalid_argument(
    fuzz: FuzzTarget, method: MethodDescriptor
) -> None:
    hints = _hints(fuzz.known)
    corrupt = corrupt_bytes(method.input_type, hints)
    payloads = (
        st.lists(
            st.one_of(corrupt, messages(method.input_type, hints).map(lambda m: m.SerializeToString())),
            min_size=1, max_size=STREAM_LENGTH,
        )
        if method.client_streaming
        else corrupt.map(lambda raw: [raw])
    )

    @FUZZ
    @given(payloads)
    def refused_plainly(payloads: list[bytes]) -> None:
        result = _send(fuzz, method, payloads)
        _assert_deliberate(method, payloads, result)
        undecodable = _first_undecodable(method, payloads)
        if undecodable is not None:
            assert result.code is grpc.StatusCode.INVALID_ARGUMENT, (result.code, result.details)
            assert "not a valid" in result.details, result.details
            if method.client_streaming:
                assert f"request stream message {undecodable} " in result.details

    refused_plainly()
    fuzz.assert_healthy()
