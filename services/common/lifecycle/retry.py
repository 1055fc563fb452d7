"""The one retry layer of the lifecycle's actors: bounded retries with exponential backoff
for idempotent gRPC calls, each attempt with its own deadline (their channels retry
nothing themselves: services.common.channels.lifecycle_channel)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from services.common.logs import log_event

logger = logging.getLogger("fulfillment.lifecycle.retry")
T = TypeVar("T")

# Transient by nature: the peer is restarting, slow, or lost a race (ABORTED). Every call
# we retry is idempotent (compare-and-set transitions, reservations keyed by order id).
TRANSIENT_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
)


def status_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    """The status of a failed call; None for an RpcError that carries none."""
    return exc.code() if hasattr(exc, "code") else None


@dataclass(frozen=True)
class RetryPolicy:
    """Six attempts, the waits between them (a random 50-100% of 0.1 s doubling to 2 s)
    about 3 s in all: long enough to ride out a service restart."""

    attempts: int = 6
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    retryable: frozenset[grpc.StatusCode] = TRANSIENT_CODES


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`; on a transient status wait (with jitter) and try again, then give up."""
    backoff = policy.initial_backoff_s
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except grpc.RpcError as exc:
            code = status_code(exc)
            if code is None or code not in policy.retryable or attempt == policy.attempts:
                raise
            log_event(
                logger, "rpc_retry", logging.WARNING,
                call=what, code=code.name, attempt=attempt, backoff_s=round(backoff, 3),
            )
            sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * policy.multiplier, policy.max_backoff_s)
    raise AssertionError("unreachable")
