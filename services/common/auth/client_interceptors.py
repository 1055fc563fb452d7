"""The caller's side: channel interceptors that send `authorization: Bearer <token>` on
every call, unary and streaming, with the token a TokenSource gives at that moment (a
ServiceTokenSource renews its own before it expires)."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from typing import Any

import grpc

from services.common.auth.mint import TokenSource
from services.common.auth.verify import AUTHORIZATION


def _with_token(metadata: Any, token_source: TokenSource) -> list[tuple[str, Any]]:
    """The call's metadata with an authorization entry added, unless the caller set its
    own (a tool acting for a customer, say)."""
    entries = list(metadata or ())
    if not any(key == AUTHORIZATION for key, _ in entries):
        entries.append((AUTHORIZATION, f"Bearer {token_source()}"))
    return entries


class _CallDetails(
    namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    pass


class AuthClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """For a sync channel: grpc.intercept_channel(channel, AuthClientInterceptor(source))."""

    def __init__(self, token_source: TokenSource) -> None:
        self._token_source = token_source

    def _details(self, details: Any) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            _with_token(details.metadata, self._token_source),
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def _aio_details(details: Any, token_source: TokenSource) -> grpc.aio.ClientCallDetails:
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        grpc.aio.Metadata(*_with_token(details.metadata, token_source)),
        details.credentials,
        details.wait_for_ready,
    )


# grpc.aio files an interceptor under the first kind it is an instance of, so each kind of
# call needs an interceptor object of its own.
class _AioUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token_source: TokenSource) -> None:
        self._token_source = token_source

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_aio_details(details, self._token_source), request)


class _AioUnaryStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, token_source: TokenSource) -> None:
        self._token_source = token_source

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_aio_details(details, self._token_source), request)


class _AioStreamUnary(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token_source: TokenSource) -> None:
        self._token_source = token_source

    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return await continuation(_aio_details(details, self._token_source), requests)


class _AioStreamStream(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, token_source: TokenSource) -> None:
        self._token_source = token_source

    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return await continuation(_aio_details(details, self._token_source), requests)


def aio_auth_interceptors(token_source: TokenSource) -> list[grpc.aio.ClientInterceptor]:
    """For an aio channel: grpc.aio.insecure_channel(addr, interceptors=aio_auth_interceptors(source))."""
    return [
        _AioUnaryUnary(token_source),
        _AioUnaryStream(token_source),
        _AioStreamUnary(token_source),
        _AioStreamStream(token_source),
    ]
