"""The statement that stores new orders: every order, its items and its first history row."""

from __future__ import annotations

from sqlalchemy import text

from services.common.lifecycle.status import FIRST_STATUS

FIRST_NOTE = "order received"

# A new order with its items and its first history row in one statement. A request key
# (customer_id, request_id) that another order holds (committed, or committed while we
# waited for its transaction) skips
# the order instead of failing the batch, and with it its items and history row, which
# join on the orders actually inserted; the caller then reads the order that holds it.
# The foreign keys of items and history are checked at the end of the statement, when the
# orders are there.
ADD_NEW_ORDERS = text(
    f"""
    WITH new_orders AS (
        INSERT INTO orders.orders
            (order_id, customer_id, customer_name, status, status_note, create_time,
             update_time, next_step_due_time, stale_claims, stock_release_pending, request_id,
             request_fingerprint)
        SELECT o.order_id, o.customer_id, o.customer_name, '{FIRST_STATUS.value}',
               '{FIRST_NOTE}', now(), now(), now() + make_interval(secs => :due_in_s), 0, false,
               o.request_id, o.fingerprint
        FROM unnest(CAST(:order_ids AS uuid[]), CAST(:customer_ids AS text[]),
                    CAST(:customer_names AS text[]), CAST(:request_ids AS text[]),
                    CAST(:fingerprints AS text[]))
             WITH ORDINALITY
             AS o(order_id, customer_id, customer_name, request_id, fingerprint, position)
        ORDER BY o.position
        ON CONFLICT (customer_id, request_id) DO NOTHING
        RETURNING order_id, create_time, next_step_due_time
    ), new_items AS (
        INSERT INTO orders.order_items (order_id, line_number, product_id, quantity, unit_price)
        SELECT i.order_id, i.line_number, i.product_id, i.quantity, i.unit_price
        FROM unnest(CAST(:item_order_ids AS uuid[]), CAST(:line_numbers AS smallint[]),
                    CAST(:product_ids AS bigint[]), CAST(:quantities AS integer[]),
                    CAST(:unit_prices AS numeric[]))
             AS i(order_id, line_number, product_id, quantity, unit_price)
        JOIN new_orders USING (order_id)
    ), first_entries AS (
        INSERT INTO orders.order_history
            (order_id, from_status, to_status, time, note, next_step_due_time, actor)
        SELECT order_id, NULL, '{FIRST_STATUS.value}', create_time, '{FIRST_NOTE}',
               next_step_due_time, :actor
        FROM new_orders
    )
    SELECT order_id, create_time, next_step_due_time FROM new_orders
    """
)
