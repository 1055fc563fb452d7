"""The one place where exceptions become gRPC statuses (google.rpc.Status with details)."""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from sqlalchemy import exc as sa_exc

from services.common import errors
from services.common.database.failures import CONNECTION_LOST, database_unavailable, sqlstate
from services.common.logs import log_event

logger = logging.getLogger("fulfillment.errors")

_CODES: list[tuple[type[errors.DomainError], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Aborted, grpc.StatusCode.ABORTED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
]

# Errors from a downstream gRPC call that we pass through with their code; anything else
# from downstream means our own request was wrong, which is a bug, not the caller's fault.
_PASS_THROUGH = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


# A status travels in the response trailers (grpc-message, and grpc-status-details-bin in
# base64), which a gRPC client refuses above 16 KiB and may refuse above 8 KiB: an error
# naming hundreds of fields or products would reach the caller as RESOURCE_EXHAUSTED
# instead of itself. So the message and the details are kept well inside that.
MESSAGE_MAX_CHARS = 600
DETAILS_MAX_BYTES = 2400
# How many entries (field violations, precondition violations, reasons) each detail keeps
# when all of them do not fit; the message says how many were left out.
_ENTRY_CAPS = (None, 64, 16, 4, 1, 0)


def _details(exc: errors.DomainError) -> tuple[list[any_pb2.Any], int]:
    """The details of `exc` within DETAILS_MAX_BYTES, and how many entries were left out."""
    total = _entry_count(exc)
    for cap in _ENTRY_CAPS:
        packed = _packed_details(exc, cap)
        if sum(detail.ByteSize() for detail in packed) <= DETAILS_MAX_BYTES:
            return packed, total - _entry_count(exc, cap)
    return [], total


def _entry_count(exc: errors.DomainError, cap: int | None = None) -> int:
    violations = len(getattr(exc, "violations", ()))
    infos = len(exc.infos)
    if cap is not None:
        violations, infos = min(violations, cap), min(infos, cap)
    return violations + infos


def _packed_details(exc: errors.DomainError, cap: int | None) -> list[any_pb2.Any]:
    packed: list[any_pb2.Any] = []
    if isinstance(exc, errors.InvalidArgument) and exc.violations[:cap]:
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in exc.violations[:cap]
            ]
        )
        packed.append(_pack(detail))
    if isinstance(exc, errors.FailedPrecondition) and exc.violations[:cap]:
        detail = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type, subject=v.subject, description=v.description
                )
                for v in exc.violations[:cap]
            ]
        )
        packed.append(_pack(detail))
    for info in exc.infos[:cap]:
        packed.append(
            _pack(
                error_details_pb2.ErrorInfo(
                    reason=info.reason.value, domain=errors.ERROR_DOMAIN, metadata=dict(info.metadata)
                )
            )
        )
    return packed


def _bounded_message(message: str, omitted: int) -> str:
    if len(message) > MESSAGE_MAX_CHARS:
        message = message[: MESSAGE_MAX_CHARS - 1] + "\u2026"
    if omitted:
        message += f" ({omitted} more details not listed)"
    return message


def _pack(message: Any) -> any_pb2.Any:
    holder = any_pb2.Any()
    holder.Pack(message)
    return holder


def to_status_proto(exc: BaseException, method: str = "") -> status_pb2.Status:
    """Translate any exception into a google.rpc.Status fit to show the caller."""
    if isinstance(exc, errors.DomainError):
        code = next(c for cls, c in _CODES if isinstance(exc, cls))
        details, omitted = _details(exc)
        return status_pb2.Status(
            code=code.value[0], message=_bounded_message(exc.message, omitted), details=details
        )
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        downstream = exc.code()
        if downstream in _PASS_THROUGH:
            return status_pb2.Status(
                code=downstream.value[0],
                message=f"a dependency did not answer: {exc.details()}",
            )
    if isinstance(exc, NotImplementedError):
        # An RPC in the proto that the servicer does not implement (the generated base
        # method raises this), such as grpc.health's List in some grpcio-health versions.
        return status_pb2.Status(
            code=code_pb2.UNIMPLEMENTED, message=f"{method or 'this method'} is not implemented"
        )
    if _is_database_unreachable(exc):
        return status_pb2.Status(
            code=code_pb2.UNAVAILABLE,
            message="the database is unavailable; retry later",
        )
    incident = uuid.uuid4().hex[:12]
    logger.exception(
        "unexpected error", extra={"fields": {"method": method, "incident": incident}}
    )
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message=f"internal error (incident {incident}); see server logs"
    )


def _is_database_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if database_unavailable(sqlstate(exc)):
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, FileNotFoundError):
        return False
    # Raised by asyncpg itself (services.common.database.statements.StatementPool) or a socket: the
    # connection is gone, or the server is starting up or shutting down.
    return isinstance(exc, CONNECTION_LOST)


async def abort_with(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> None:
    status = rpc_status.to_status(to_status_proto(exc, method))
    if status.code is not grpc.StatusCode.INTERNAL:
        log_event(logger, "rpc_error", method=method, code=status.code.name, message=status.details)
    await context.abort(status.code, status.details, status.trailing_metadata)


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler so that neither an exception nor an undecodable request reaches
    the caller as anything but a deliberate status.

    The wrapped handlers take their requests as raw bytes (request_deserializer=None) and
    decode them here: grpcio decodes before any interceptor runs and answers a body that
    is not a valid message UNKNOWN, with the decoder's Python exception in the text.
    Servicers therefore read stream requests from the request iterator, never with
    context.read(), which would hand them the raw bytes.
    """

    def __init__(self) -> None:
        # The continuation answers the same handler object for a method on every call, so
        # each is wrapped once; per call this costs a dict lookup.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = _wrap_handler(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def _wrap_handler(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    deserialize = handler.request_deserializer or _as_is
    serialize = handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _unary_response(handler.unary_unary, _unary_decoder(deserialize, method), method),
            response_serializer=serialize,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _stream_response(handler.unary_stream, _unary_decoder(deserialize, method), method),
            response_serializer=serialize,
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _unary_response(handler.stream_unary, _stream_decoder(deserialize, method), method),
            response_serializer=serialize,
        )
    return grpc.stream_stream_rpc_method_handler(
        _stream_response(handler.stream_stream, _stream_decoder(deserialize, method), method),
        response_serializer=serialize,
    )


def _as_is(raw: bytes) -> bytes:
    return raw


def undecodable_request(
    deserialize: Callable[[bytes], Any], method: str, index: int | None = None
) -> errors.InvalidArgument:
    """The error for bytes that are not a message of the RPC's request type; `index` is
    the message's 0-based position in a request stream."""
    message_class = getattr(deserialize, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)
    expected = descriptor.full_name if descriptor is not None else f"request of {method}"
    what = "the request" if index is None else f"request stream message {index} (0-based)"
    ending = "" if index is None else "; the stream ends here"
    description = (
        f"not a valid {expected}: truncated or corrupt protobuf bytes, "
        "or invalid UTF-8 in a string field"
    )
    # No field path: the request as a whole could not be read.
    return errors.InvalidArgument(
        f"{what} is {description}{ending}", [errors.FieldViolation("", description)]
    )


def _unary_decoder(deserialize: Callable[[bytes], Any], method: str) -> Callable[[bytes], Any]:
    def decode(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except DecodeError:
            raise undecodable_request(deserialize, method) from None

    return decode


def _stream_decoder(
    deserialize: Callable[[bytes], Any], method: str
) -> Callable[[AsyncIterator[bytes]], AsyncIterator[Any]]:
    async def decode(raw_requests: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        index = 0
        async for raw in raw_requests:
            try:
                request = deserialize(raw)
            except DecodeError:
                raise undecodable_request(deserialize, method, index) from None
            yield request
            index += 1

    return decode


def _unary_response(
    behavior: Callable[..., Any], decode: Callable[[Any], Any], method: str
) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(decode(request), context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort_with(context, exc, method)

    return wrapped


def _stream_response(
    behavior: Callable[..., Any], decode: Callable[[Any], Any], method: str
) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behavior):
        # A coroutine that writes its responses with context.write (grpc.health's Watch):
        # grpc.aio tells the two kinds apart by the function, so the wrapper keeps the kind.
        return _unary_response(behavior, decode, method)

    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for response in behavior(decode(request), context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort_with(context, exc, method)

    return wrapped
