"""The error-mapping interceptor on a real loopback server (echo handlers, no database):
how undecodable requests, handler errors and oversized errors reach the caller."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import TypeVar

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from services.common import errors
from services.common.error_infos import error_infos
from services.common.grpc_errors import ErrorMappingInterceptor
from services.common.server import ServiceParts, start_server

pytestmark = pytest.mark.integration

T = TypeVar("T")


# The interceptor on a real loopback server, with echo handlers (no database): how a
# request that is not a valid message is answered, for each kind of RPC.

ECHO_SERVICE = "test.Echo"
Request = health_pb2.HealthCheckRequest  # any message with a string field will do


async def _echo(request: Request, context: grpc.aio.ServicerContext) -> Request:
    return request


async def _echo_stream(requests, context: grpc.aio.ServicerContext):
    async for request in requests:
        yield request


async def _count(requests, context: grpc.aio.ServicerContext) -> Request:
    return Request(service=str(len([r async for r in requests])))


async def _write_twice(request: Request, context: grpc.aio.ServicerContext) -> None:
    await context.write(request)
    await context.write(request)


def _not_implemented(request: Request, context: grpc.ServicerContext) -> None:
    """What protoc generates for an RPC a servicer does not override."""
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    raise NotImplementedError("Method not implemented!")


async def _refuse_everything(request: Request, context: grpc.aio.ServicerContext) -> Request:
    """An error as large as a request naming hundreds of bad fields and unknown products."""
    refused = errors.InvalidArgument(
        "invalid request: " + "; ".join(f"items[{i}].product_id: does not exist" for i in range(900)),
        [errors.FieldViolation(f"items[{i}].product_id", "x" * 40) for i in range(900)],
    )
    refused.infos = tuple(
        errors.ErrorInfo(errors.Reason.PRODUCT_NOT_FOUND, {"product_id": str(10**18 + i)})
        for i in range(900)
    )
    raise refused


def _register_echo(server: grpc.aio.Server) -> list[str]:
    options = {
        "request_deserializer": Request.FromString,
        "response_serializer": Request.SerializeToString,
    }
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler(ECHO_SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(_echo, **options),
            "Stream": grpc.stream_stream_rpc_method_handler(_echo_stream, **options),
            "Count": grpc.stream_unary_rpc_method_handler(_count, **options),
            "Written": grpc.unary_stream_rpc_method_handler(_write_twice, **options),
            "Missing": grpc.unary_unary_rpc_method_handler(_not_implemented, **options),
            "Refuse": grpc.unary_unary_rpc_method_handler(_refuse_everything, **options),
        })
    ])
    return []


def _against_echo_server(scenario: Callable[[grpc.aio.Channel], Awaitable[T]]) -> T:
    async def run() -> T:
        running = await start_server("127.0.0.1:0", ServiceParts(register=_register_echo))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                return await asyncio.wait_for(scenario(channel), timeout=20)
        finally:
            await running.stop(0)

    return asyncio.run(run())


def _plain_invalid_argument(error: grpc.aio.AioRpcError) -> str:
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    details = error.details() or ""
    assert "grpc.health.v1.HealthCheckRequest" in details
    assert "DecodeError" not in details and "<class" not in details
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request) and bad_request.field_violations
    return details


@pytest.mark.parametrize(
    "body", [b"\x00", b"\x0a\x05ab", b"\x0a\x02\xff\xfe"], ids=["nul", "truncated", "bad-utf8"]
)
def test_a_corrupt_unary_request_is_invalid_argument_in_plain_words(body: bytes) -> None:
    async def scenario(channel: grpc.aio.Channel) -> str:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await channel.unary_unary(f"/{ECHO_SERVICE}/Unary")(body)
        return _plain_invalid_argument(failure.value)

    details = _against_echo_server(scenario)
    assert details.startswith("the request is not a valid")


def test_a_valid_request_still_reaches_the_handler_decoded() -> None:
    async def scenario(channel: grpc.aio.Channel) -> bytes:
        return await channel.unary_unary(f"/{ECHO_SERVICE}/Unary")(
            Request(service="ping").SerializeToString()
        )

    assert Request.FromString(_against_echo_server(scenario)).service == "ping"


def test_a_corrupt_message_mid_stream_ends_the_stream_after_the_ones_before() -> None:
    good = [Request(service=f"m{i}").SerializeToString() for i in range(3)]

    async def scenario(channel: grpc.aio.Channel) -> tuple[list[bytes], str]:
        call = channel.stream_stream(f"/{ECHO_SERVICE}/Stream")(iter([*good[:2], b"\x00", good[2]]))
        received: list[bytes] = []
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            async for response in call:
                received.append(response)
        return received, _plain_invalid_argument(failure.value)

    received, details = _against_echo_server(scenario)
    assert [Request.FromString(r).service for r in received] == ["m0", "m1"]
    assert "request stream message 2 (0-based)" in details


def test_a_corrupt_message_in_a_client_stream_is_invalid_argument() -> None:
    async def scenario(channel: grpc.aio.Channel) -> str:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await channel.stream_unary(f"/{ECHO_SERVICE}/Count")(
                iter([Request().SerializeToString(), b"\xff" * 12])
            )
        return _plain_invalid_argument(failure.value)

    assert "request stream message 1 (0-based)" in _against_echo_server(scenario)


def test_a_handler_that_writes_its_responses_keeps_working() -> None:
    """Such handlers (grpc.health's Watch is one) used to answer INTERNAL through the
    interceptor, which iterated their coroutine as if it were a generator."""

    async def scenario(channel: grpc.aio.Channel) -> list[bytes]:
        call = channel.unary_stream(f"/{ECHO_SERVICE}/Written")(Request(service="w").SerializeToString())
        return [response async for response in call]

    assert [Request.FromString(r).service for r in _against_echo_server(scenario)] == ["w", "w"]


def test_health_watch_answers_through_the_interceptor() -> None:
    async def scenario(channel: grpc.aio.Channel) -> int:
        call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        async for response in call:
            call.cancel()
            return response.status
        raise AssertionError("the watch ended without an answer")

    assert _against_echo_server(scenario) == health_pb2.HealthCheckResponse.SERVING


def test_each_method_handler_is_wrapped_once() -> None:
    interceptor = ErrorMappingInterceptor()
    handlers = [
        grpc.unary_unary_rpc_method_handler(_echo, request_deserializer=Request.FromString)
        for _ in range(2)
    ]
    served = handlers[0]

    async def continuation(_details: object) -> grpc.RpcMethodHandler:
        return served

    details = SimpleNamespace(method=f"/{ECHO_SERVICE}/Unary")

    async def wrap() -> grpc.RpcMethodHandler:
        return await interceptor.intercept_service(continuation, details)  # type: ignore[arg-type]

    first, again = asyncio.run(wrap()), asyncio.run(wrap())
    assert first is again and first.request_deserializer is None
    served = handlers[1]
    assert asyncio.run(wrap()) is not first


def test_an_rpc_the_servicer_does_not_implement_is_unimplemented() -> None:
    """A generated servicer base method raises NotImplementedError, which answered
    INTERNAL (grpc.health's List, missing from some grpcio-health servicers, was one)."""

    async def scenario(channel: grpc.aio.Channel) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await channel.unary_unary(f"/{ECHO_SERVICE}/Missing")(b"")
        return failure.value.code(), failure.value.details() or ""

    code, details = _against_echo_server(scenario)
    assert code is grpc.StatusCode.UNIMPLEMENTED
    assert details == f"/{ECHO_SERVICE}/Missing is not implemented"


def test_an_error_naming_hundreds_of_fields_reaches_the_caller_as_itself_within_the_trailer_limit() -> None:
    async def scenario(channel: grpc.aio.Channel) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await channel.unary_unary(f"/{ECHO_SERVICE}/Refuse")(Request().SerializeToString())
        return failure.value

    for _ in range(5):  # a client refuses oversized trailers only some of the time
        error = _against_echo_server(scenario)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
        details = error.details() or ""
        assert len(details) < 700 and "more details not listed" in details
        status = rpc_status.from_call(error)
        assert status is not None and status.ByteSize() < 4096
        assert error_infos(error, errors.Reason.PRODUCT_NOT_FOUND), "every reason was dropped"
