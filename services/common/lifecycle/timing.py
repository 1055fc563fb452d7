"""When a step counts as due: its simulated duration plus a margin for the broker to hand
the task over and the step to run. The orders service stamps each order with the due time
of its next step; the stale monitor only acts on a step overdue by FULFILLMENT_STALE_AFTER_S
and the lifecycle's lag on top of that."""

from __future__ import annotations

STEP_DUE_MARGIN_S = 1.0


def step_due_in(delay_s: float) -> float:
    """Seconds until a step that was scheduled `delay_s` from now counts as due."""
    return delay_s + STEP_DUE_MARGIN_S
