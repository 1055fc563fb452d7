"""The statements of a transition: the compare-and-set of an order's status, its history
row and the announcement to watchers."""

from __future__ import annotations

from sqlalchemy import bindparam, text

# The compare-and-set at the heart of every transition. The WHERE clause is re-checked
# against the latest committed version of the row once its lock is ours, so of two racing
# transitions from the same status exactly one matches; the other sees zero rows.
# clock_timestamp(), not now(): a transaction that waited for the lock must not record a
# time earlier than the transition it waited for. The order's items never change, so
# reading them in the same statement is safe whatever its snapshot.
_SET_STATUS = """
    UPDATE orders.orders
    SET status = :to_status,
        status_note = :note,
        update_time = clock_timestamp(),
        next_step_due_time = clock_timestamp() + make_interval(secs => :due_in_s),
        stale_claims = 0,
        stock_release_pending = stock_release_pending OR :release_stock
    WHERE order_id = :order_id AND status = {from_condition}{visibility}
    RETURNING *
"""
_CHANGED_ORDER_WITH_ITEMS = """
    SELECT changed.*, items.product_ids, items.quantities, items.unit_prices{notified}
    FROM changed
    CROSS JOIN LATERAL (
        SELECT array_agg(i.product_id ORDER BY i.line_number) AS product_ids,
               array_agg(i.quantity ORDER BY i.line_number) AS quantities,
               array_agg(i.unit_price ORDER BY i.line_number) AS unit_prices
        FROM orders.order_items AS i
        WHERE i.order_id = changed.order_id
    ) AS items
"""

# A transition from one known status is a single statement: the CAS, its history row and
# the announcement. from_status is the status the CAS matched, which is the previous
# entry's to_status (every transition writes both). pg_notify is delivered to listeners
# only when the transaction commits, and is called only when a row changed.
ADVANCE_FROM_ONE_STATUS = text(
    "WITH changed AS ("
    + _SET_STATUS.format(from_condition=":from_status", visibility="")
    + """), entry AS (
        INSERT INTO orders.order_history
            (order_id, from_status, to_status, time, note, next_step_due_time, actor)
        SELECT order_id, :from_status, status, update_time, status_note, next_step_due_time,
               :actor
        FROM changed
    )"""
    + _CHANGED_ORDER_WITH_ITEMS.format(
        notified=", pg_notify(:channel, CAST(changed.order_id AS text)) AS notified"
    )
)

# From any of several statuses (a cancel), which one matched is not known to the UPDATE
# (RETURNING shows only the new row), so its history row is written by the next statement.
# A customer's cancel matches only its own orders (:customer_id; NULL for anyone's).
CHANGE_FROM_ANY_STATUS = text(
    "WITH changed AS ("
    + _SET_STATUS.format(
        from_condition="ANY(:from_statuses)",
        visibility=" AND (CAST(:customer_id AS text) IS NULL OR customer_id = :customer_id)",
    )
    + ")"
    + _CHANGED_ORDER_WITH_ITEMS.format(notified="")
).bindparams(bindparam("from_statuses", expanding=False))

# A separate statement from the UPDATE on purpose: it reads with a snapshot taken after we
# hold the order's row lock, so it sees the history row of the transition we may have
# waited for, and from_status always equals the previous entry's to_status. It answers
# that from_status: the status the compare-and-set matched.
RECORD_TRANSITION = text(
    """
    WITH entry AS (
        INSERT INTO orders.order_history
            (order_id, from_status, to_status, time, note, next_step_due_time, actor)
        SELECT :order_id,
               (SELECT h.to_status FROM orders.order_history AS h
                WHERE h.order_id = :order_id ORDER BY h.id DESC LIMIT 1),
               :to_status, :time, :note, :next_step_due_time, :actor
        RETURNING from_status
    )
    SELECT entry.from_status, pg_notify(:channel, :order_id_text) AS notified FROM entry
    """
)
