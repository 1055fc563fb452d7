"""The monitor's rules for a stale step: re-drive it, or fail the order, and how each is
worded. Plain data and functions (no grpc, no celery)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.lifecycle.status import OrderStatus


def redrive_note(attempt: int, retries: int, postponed_because: str = "") -> str:
    if postponed_because:
        return f"re-drive attempt {attempt}; failing postponed: {postponed_because}"
    return f"re-drive attempt {attempt} of {retries}"


def stale_failure_note(status: OrderStatus, redrives: int) -> str:
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

    def note(self, status: OrderStatus) -> str:
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
