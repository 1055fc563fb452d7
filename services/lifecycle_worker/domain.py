"""Lifecycle rules: which step follows which status, and how outcomes are worded.

Plain data and functions only (no grpc, no celery), shared by the worker and the monitor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PENDING = "PENDING"
PROCESSING = "PROCESSING"
PACKAGING = "PACKAGING"
SHIPPED = "SHIPPED"
DELIVERED = "DELIVERED"
CANCELED = "CANCELED"
FAILED = "FAILED"

NORMAL_PATH: tuple[str, ...] = (PENDING, PROCESSING, PACKAGING, SHIPPED, DELIVERED)
TERMINAL: frozenset[str] = frozenset({DELIVERED, CANCELED, FAILED})

# The step run while an order sits in a status moves it to the next status on the normal
# path; the PROCESSING step is the one that reserves stock.
RESERVING_STEP = PROCESSING

# Slack added to a step's simulated duration when telling the orders service when that
# step is due: time for the broker to hand the task over and the step to run. The stale
# monitor adds FULFILLMENT_STALE_AFTER_S on top before it steps in.
STEP_DUE_MARGIN_S = 1.0


@dataclass(frozen=True)
class OrderItem:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class OrderSnapshot:
    order_id: str
    status: str
    items: tuple[OrderItem, ...]


@dataclass(frozen=True)
class Shortfall:
    product_id: int
    requested: int
    available: int | None


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def steps_without_reserving(status: str) -> tuple[str, ...]:
    """The statuses the steps after reaching `status` lead to, up to the next reserving
    step or the end of the path: what can run at once when steps take no time."""
    following: list[str] = []
    while status != RESERVING_STEP and (after := next_status(status)) is not None:
        following.append(after)
        status = after
    return tuple(following)


def next_status(status: str) -> str | None:
    """The status the step for `status` leads to, or None for a status without a step."""
    if status not in NORMAL_PATH or status == DELIVERED:
        return None
    return NORMAL_PATH[NORMAL_PATH.index(status) + 1]


def is_past(status: str, reference: str) -> bool:
    """True when `status` lies after `reference` on the normal path (or is terminal)."""
    if status in (CANCELED, FAILED):
        return True
    if status not in NORMAL_PATH or reference not in NORMAL_PATH:
        return False
    return NORMAL_PATH.index(status) > NORMAL_PATH.index(reference)


def step_due_in(delay_s: float) -> float:
    """Seconds until a step that was scheduled `delay_s` from now counts as due."""
    return delay_s + STEP_DUE_MARGIN_S


def shortfall_note(shortfalls: Iterable[Shortfall]) -> str:
    """e.g. 'insufficient stock: product 12 requested 3, available 1; product 14 ...'."""
    parts = []
    for short in sorted(shortfalls, key=lambda s: s.product_id):
        available = "unknown" if short.available is None else str(short.available)
        parts.append(
            f"product {short.product_id} requested {short.requested}, available {available}"
        )
    return "insufficient stock: " + "; ".join(parts)


def redrive_note(attempt: int, retries: int, postponed_because: str = "") -> str:
    if postponed_because:
        return f"re-drive attempt {attempt}; failing postponed: {postponed_because}"
    return f"re-drive attempt {attempt} of {retries}"


def stale_failure_note(status: str, redrives: int) -> str:
    plural = "" if redrives == 1 else "s"
    return f"stale: step {status} overdue after {redrives} re-drive{plural}"


@dataclass(frozen=True)
class Redrive:
    attempt: int
    retries: int
    # Why an order that has used up its re-drives is re-driven again instead of failed.
    postponed_because: str = ""

    @property
    def note(self) -> str:
        return redrive_note(self.attempt, self.retries, self.postponed_because)


@dataclass(frozen=True)
class FailStale:
    redrives: int

    def note(self, status: str) -> str:
        return stale_failure_note(status, self.redrives)


def decide_stale(stale_claims: int, retries: int, cannot_fail_because: str = "") -> Redrive | FailStale:
    """A stale step is re-driven `retries` times; the claim after that fails the order,
    unless something outside the order explains why its step did not run
    (`cannot_fail_because`), in which case it is re-driven again."""
    if stale_claims <= retries:
        return Redrive(attempt=stale_claims, retries=retries)
    if cannot_fail_because:
        return Redrive(stale_claims, retries, postponed_because=cannot_fail_because)
    # More claims than retries + 1 means an earlier attempt to fail it did not finish;
    # the order was still re-driven only `retries` times.
    return FailStale(redrives=min(stale_claims - 1, retries))
