"""The statement that claims overdue orders for the stale monitor."""

from __future__ import annotations

from sqlalchemy import text

from services.common.lifecycle.status import NON_TERMINAL

_ACTIVE_STATUSES_SQL = ", ".join(f"'{status.value}'" for status in NON_TERMINAL)

# Two monitors never claim the same order: SKIP LOCKED passes over rows another claimer
# has locked instead of waiting for them, and a claimed row's due time is pushed past
# now() before its lock is released at commit, so a later claimer, re-checking the WHERE
# clause on the committed row, no longer finds it overdue. The status list is spelled out
# so the planner can use the partial index on next_step_due_time.
CLAIM_STALE = text(
    f"""
    UPDATE orders.orders AS o
    SET next_step_due_time = clock_timestamp() + make_interval(secs => :lease_s),
        stale_claims = o.stale_claims + 1
    WHERE o.order_id IN (
        SELECT order_id FROM orders.orders
        WHERE status IN ({_ACTIVE_STATUSES_SQL})
          AND next_step_due_time < now() - make_interval(secs => :stale_after_s)
        ORDER BY next_step_due_time
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING o.*
    """
)
