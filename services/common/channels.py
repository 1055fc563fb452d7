"""gRPC client channels. Create them per process (after any fork), never at import time."""

from __future__ import annotations

import json

import grpc

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

CHANNEL_OPTIONS = [
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


def dial_addr(addr: str) -> str:
    """A listen address such as 0.0.0.0:50051 is dialled on loopback."""
    host, _, port = addr.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        return f"127.0.0.1:{port}"
    return addr


def aio_channel(addr: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(dial_addr(addr), options=CHANNEL_OPTIONS)


def sync_channel(addr: str) -> grpc.Channel:
    return grpc.insecure_channel(dial_addr(addr), options=CHANNEL_OPTIONS)
