"""Orders belong to customers, and history says who caused each transition.

orders.customer_id is the subject of the customer token that placed the order (or the
customer an admin placed it for); request_ids become unique per customer instead of
globally, so one customer can never receive another's order by sending the same key.
order_history.actor names who caused each transition ("customer:<sub>", "admin:<sub>",
"service:<sub>"). Rows from before this revision get an empty customer and actor.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "orders"


def upgrade() -> None:
    op.add_column(
        "orders", sa.Column("customer_id", sa.Text, nullable=False, server_default=""),
        schema=SCHEMA,
    )
    op.alter_column("orders", "customer_id", server_default=None, schema=SCHEMA)
    op.drop_constraint("uq_orders_request_id", "orders", schema=SCHEMA)
    op.create_unique_constraint(
        "uq_orders_customer_id_request_id", "orders", ["customer_id", "request_id"],
        schema=SCHEMA,
    )
    # A customer's keyset pages, newest first.
    op.create_index(
        "ix_orders_customer_id_create_time", "orders", ["customer_id", "create_time", "order_id"],
        schema=SCHEMA,
    )
    op.add_column(
        "order_history", sa.Column("actor", sa.Text, nullable=False, server_default=""),
        schema=SCHEMA,
    )
    op.alter_column("order_history", "actor", server_default=None, schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("order_history", "actor", schema=SCHEMA)
    op.drop_index("ix_orders_customer_id_create_time", "orders", schema=SCHEMA)
    op.drop_constraint("uq_orders_customer_id_request_id", "orders", schema=SCHEMA)
    op.create_unique_constraint("uq_orders_request_id", "orders", ["request_id"], schema=SCHEMA)
    op.drop_column("orders", "customer_id", schema=SCHEMA)
