"""Calling any RPC with bytes of our choosing: what a client with a broken (or hostile)
serializer sends. Shared by the bad-input tests and the fuzz tests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

# Codes that mean the server failed, not the caller: no input may ever produce them.
SERVER_FAULT_CODES = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)
# What a Python exception leaks into a message: "<class 'x.Y'>", a traceback, a
# ...Error/...Exception class name, or the driver that raised it.
LEAKED_INTERNALS = re.compile(
    r"<class |Traceback|File \"|\b[A-Z]\w*(Error|Exception)\b|asyncpg|sqlalchemy|psycopg"
)


def leaked_internals(text: str, sent: Iterable[str] = ()) -> str | None:
    """What in `text` looks like a Python internal, once every string the caller sent is
    taken out: a message may quote the caller's own value, whatever it says."""
    for value in sorted(sent, key=len, reverse=True):
        for form in (repr(value), value, value.strip()):
            if form:
                text = text.replace(form, "")
    found = LEAKED_INTERNALS.search(text)
    return found.group(0) if found else None


def strings_in(message: Message) -> list[str]:
    """Every string field value in `message`, nested messages included."""
    found: list[str] = []
    for field, value in message.ListFields():
        for item in value if field.is_repeated else [value]:
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, Message):
                found.extend(strings_in(item))
    return found


@dataclass(frozen=True)
class RawResult:
    code: grpc.StatusCode
    details: str
    responses: list[bytes]
    status: status_pb2.Status | None

    def bad_request(self) -> error_details_pb2.BadRequest | None:
        for detail in self.status.details if self.status else []:
            found = error_details_pb2.BadRequest()
            if detail.Unpack(found):
                return found
        return None


def rpc_methods(*services: ServiceDescriptor) -> list[MethodDescriptor]:
    return [method for service in services for method in service.methods]


def method_path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def call_raw(
    channel: grpc.Channel,
    method: MethodDescriptor,
    payloads: Sequence[bytes],
    *,
    timeout: float = 10.0,
    max_responses: int | None = None,
    metadata: Sequence[tuple[str, str]] = (),
) -> RawResult:
    """Send `payloads` as the request (the first one for a unary request) and collect the
    raw responses; a response stream is cancelled after `max_responses` (a watch of a live
    order would otherwise run until its deadline). A cancelled call counts as OK."""
    path = method_path(method)
    responses: list[bytes] = []
    try:
        if method.client_streaming and method.server_streaming:
            call = channel.stream_stream(path)(iter(payloads), timeout=timeout, metadata=metadata)
            _take(call, max_responses, responses)
        elif method.client_streaming:
            responses = [channel.stream_unary(path)(iter(payloads), timeout=timeout, metadata=metadata)]
        elif method.server_streaming:
            call = channel.unary_stream(path)(payloads[0], timeout=timeout, metadata=metadata)
            _take(call, max_responses, responses)
        else:
            responses = [channel.unary_unary(path)(payloads[0], timeout=timeout, metadata=metadata)]
    except grpc.RpcError as error:
        return RawResult(
            error.code(), error.details() or "", responses, rpc_status.from_call(error)  # type: ignore[arg-type]
        )
    return RawResult(grpc.StatusCode.OK, "", responses, None)


def _take(call: Iterator[bytes], limit: int | None, taken: list[bytes]) -> None:
    """Append the responses of `call` to `taken`, which keeps them when the call fails."""
    try:
        for response in call:
            taken.append(response)
            if limit is not None and len(taken) >= limit:
                break
    finally:
        call.cancel()  # type: ignore[attr-defined]


def invalid_utf8_request(message: Descriptor) -> bytes | None:
    """A request whose first string field holds bytes that are not UTF-8, or None when the
    message has no string field."""
    for field in message.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            bad = b"\xff\xfe\xc0\xae"
            return _tag(field.number, 2) + bytes([len(bad)]) + bad
    return None


def _tag(number: int, wire_type: int) -> bytes:
    value = number << 3 | wire_type
    encoded = bytearray()
    while value > 0x7F:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    encoded.append(value)
    return bytes(encoded)
