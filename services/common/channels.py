"""gRPC client channels. Create them per process (after any fork), never at import time.

One retry layer per call path:
- service to service inside a request (the orders service asking the inventory:
  `aio_channel`): the channel's own gRPC retry policy below, nothing on top;
- the lifecycle's actors (worker, monitor: `lifecycle_channel`): their calls go through
  services.common.lifecycle.retry, which retries with a fresh deadline per attempt and
  logs each retry; their channels carry no retry policy of their own.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from services.common.auth.client_interceptors import AuthClientInterceptor, aio_auth_interceptors
from services.common.auth.mint import TokenSource
from services.common.tracing import aio_client_interceptors, traced_channel

# gRPC's own transparent retry for calls that never reached a server or met a restarting
# one: a server that is shutting down answers UNAVAILABLE, or CANCELLED for calls it had
# accepted but not started (grpc/grpc#41785). Calls between our services are idempotent
# (reads, or keyed by order id), so retrying them is safe.
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
                },
            }
        ]
    }
)

_COMMON_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]
CHANNEL_OPTIONS = [("grpc.service_config", _SERVICE_CONFIG), ("grpc.enable_retries", 1), *_COMMON_OPTIONS]


def dial_addr(addr: str) -> str:
    """A listen address such as 0.0.0.0:50051 is dialled on loopback."""
    host, _, port = addr.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        return f"127.0.0.1:{port}"
    return addr


def aio_channel(
    addr: str,
    credentials: grpc.ChannelCredentials | None = None,
    token_source: TokenSource | None = None,
) -> grpc.aio.Channel:
    """`credentials` (services.common.tls.channel_credentials): TLS, None: plaintext;
    `token_source` (services.common.security.service_token_source): the bearer token every
    call presents, None: none."""
    interceptors = [
        *aio_client_interceptors(),  # a span per call, its context in the call's metadata
        *(aio_auth_interceptors(token_source) if token_source is not None else ()),
    ] or None
    if credentials is None:
        return grpc.aio.insecure_channel(
            dial_addr(addr), options=CHANNEL_OPTIONS, interceptors=interceptors
        )
    return grpc.aio.secure_channel(
        dial_addr(addr), credentials, options=CHANNEL_OPTIONS, interceptors=interceptors
    )


def sync_channel(
    addr: str,
    credentials: grpc.ChannelCredentials | None = None,
    token_source: TokenSource | None = None,
) -> grpc.Channel:
    return _sync_channel(addr, credentials, token_source, CHANNEL_OPTIONS)


def lifecycle_channel(
    addr: str,
    credentials: grpc.ChannelCredentials | None = None,
    token_source: TokenSource | None = None,
) -> grpc.Channel:
    """A channel without a retry policy, for callers that retry themselves."""
    return _sync_channel(addr, credentials, token_source, _COMMON_OPTIONS)


def _sync_channel(
    addr: str,
    credentials: grpc.ChannelCredentials | None,
    token_source: TokenSource | None,
    options: list[tuple[str, Any]],
) -> grpc.Channel:
    if credentials is None:
        channel = grpc.insecure_channel(dial_addr(addr), options=options)
    else:
        channel = grpc.secure_channel(dial_addr(addr), credentials, options=options)
    if token_source is not None:
        channel = grpc.intercept_channel(channel, AuthClientInterceptor(token_source))
    return traced_channel(channel)
