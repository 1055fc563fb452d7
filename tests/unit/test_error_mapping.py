from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import TypeVar

import asyncpg
import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from sqlalchemy import exc as sa_exc

from services.common import errors
from services.common.error_infos import error_infos
from services.common.error_status import to_status_proto
from services.common.grpc_errors import ErrorMappingInterceptor
from services.common.server import ServiceParts, start_server

T = TypeVar("T")


def test_invalid_argument_carries_field_violations() -> None:
    exc = errors.InvalidArgument("bad", [errors.FieldViolation("items[0].quantity", "must be >= 1")])
    status = to_status_proto(exc)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == "bad"
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert detail.field_violations[0].field == "items[0].quantity"


def test_failed_precondition_carries_precondition_failure() -> None:
    exc = errors.FailedPrecondition(
        "short", [errors.PreconditionViolation("STOCK", "products/7", "requested 3, available 1")]
    )
    status = to_status_proto(exc)
    detail = error_details_pb2.PreconditionFailure()
    assert status.code == code_pb2.FAILED_PRECONDITION
    assert status.details[0].Unpack(detail)
    assert detail.violations[0].subject == "products/7"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.NotFound("x"), code_pb2.NOT_FOUND),
        (errors.AlreadyExists("x"), code_pb2.ALREADY_EXISTS),
        (errors.Aborted("x"), code_pb2.ABORTED),
        (errors.ResourceExhausted("x"), code_pb2.RESOURCE_EXHAUSTED),
        (errors.Unavailable("x"), code_pb2.UNAVAILABLE),
        (ConnectionRefusedError("db"), code_pb2.UNAVAILABLE),
        (NotImplementedError("Method not implemented!"), code_pb2.UNIMPLEMENTED),
    ],
)
def test_codes(exc: Exception, code: int) -> None:
    assert to_status_proto(exc).code == code


def test_unexpected_error_hides_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        status = to_status_proto(KeyError("secret internals"), "/svc/Method")
    assert status.code == code_pb2.INTERNAL
    assert "secret internals" not in status.message
    assert "incident" in status.message
    assert any("unexpected error" in r.message for r in caplog.records)


def test_validator_collects_every_violation() -> None:
    v = errors.Validator()
    v.check(False, "a", "bad a")
    v.check(True, "b", "fine")
    v.check(False, "c", "bad c")
    with pytest.raises(errors.InvalidArgument) as info:
        v.raise_if_invalid()
    assert [x.field for x in info.value.violations] == ["a", "c"]
    assert "a: bad a" in info.value.message and "c: bad c" in info.value.message


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


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        sa_exc.DBAPIError("connect", {}, asyncpg.exceptions.TooManyConnectionsError("sorry")),
        asyncpg.exceptions.OutOfMemoryError("out of memory"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    ],
)
def test_a_database_out_of_resources_or_starting_up_is_unavailable(exc: Exception) -> None:
    assert to_status_proto(exc).code == code_pb2.UNAVAILABLE


class _FailedCall(grpc.RpcError):
    def __init__(self, status: status_pb2.Status) -> None:
        self._trailers = (("grpc-status-details-bin", status.SerializeToString()),)

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailers


def test_structured_reasons_travel_as_error_infos_and_are_read_by_reason() -> None:
    insufficient = errors.Reason.INSUFFICIENT_STOCK
    short = [
        errors.ErrorInfo(insufficient, {"product_id": "12", "requested": "3", "available": "1"}),
        errors.ErrorInfo(insufficient, {"product_id": "14", "requested": "2", "available": "0"}),
    ]
    status = to_status_proto(errors.FailedPrecondition("not enough stock", infos=short))

    infos = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            infos.append((info.domain, info.reason, dict(info.metadata)))
    assert infos == [("fulfillment", "INSUFFICIENT_STOCK", dict(i.metadata)) for i in short]

    call = _FailedCall(status)
    assert error_infos(call, errors.Reason.INSUFFICIENT_STOCK) == [dict(i.metadata) for i in short]
    assert error_infos(call, errors.Reason.PRODUCT_NOT_FOUND) == []


def test_a_call_without_a_readable_status_has_no_reasons() -> None:
    assert error_infos(grpc.RpcError(), errors.Reason.INSUFFICIENT_STOCK) == []

    class Garbled(_FailedCall):
        def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
            return (("grpc-status-details-bin", b"\xff\xff\xff"),)

    assert error_infos(Garbled(status_pb2.Status()), errors.Reason.INSUFFICIENT_STOCK) == []


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
