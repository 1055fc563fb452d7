"""The error-mapping interceptor every server registers: requests are decoded here, so
undecodable bytes answer INVALID_ARGUMENT, and any exception a handler raises becomes
the status services.common.error_status gives it."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from services.common import errors
from services.common.error_status import to_status_proto
from services.common.handlers import WrappedHandlers
from services.common.logs import log_event

logger = logging.getLogger("fulfillment.errors")

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
        self._handlers = WrappedHandlers()  # each method's handler wrapped once

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        return self._handlers.get(method, handler, lambda h: _wrap_handler(h, method))


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
