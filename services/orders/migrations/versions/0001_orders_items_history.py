"""Orders, their items (with the price snapshot) and their transition history.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "orders"
STATUSES = ("PENDING", "PROCESSING", "PACKAGING", "SHIPPED", "DELIVERED", "CANCELED", "FAILED")
NON_TERMINAL = ("PENDING", "PROCESSING", "PACKAGING", "SHIPPED")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("customer_name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_note", sa.Text, nullable=False, server_default=""),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_step_due_time", sa.DateTime(timezone=True)),
        # Claims of the current step as stale by the monitor; reset by every transition.
        sa.Column("stale_claims", sa.Integer, nullable=False, server_default="0"),
        # Canceled, and the inventory has not yet confirmed giving the stock back.
        sa.Column("stock_release_pending", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("request_id", sa.Text),
        sa.Column("request_fingerprint", sa.Text),
        sa.PrimaryKeyConstraint("order_id", name="pk_orders"),
        sa.UniqueConstraint("request_id", name="uq_orders_request_id"),
        sa.CheckConstraint(_in("status", STATUSES), name="ck_orders_status_known"),
        sa.CheckConstraint("stale_claims >= 0", name="ck_orders_stale_claims_not_negative"),
        sa.CheckConstraint(
            "(request_id IS NULL) = (request_fingerprint IS NULL)",
            name="ck_orders_request_id_has_fingerprint",
        ),
        schema=SCHEMA,
    )
    # Keyset pagination, newest first, unfiltered and with each filter.
    op.create_index("ix_orders_create_time", "orders", ["create_time", "order_id"], schema=SCHEMA)
    op.create_index(
        "ix_orders_status_create_time", "orders", ["status", "create_time", "order_id"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_orders_customer_name_create_time", "orders",
        ["customer_name", "create_time", "order_id"], schema=SCHEMA,
    )
    # The stale sweep reads only orders still moving; terminal ones drop out of the index.
    op.create_index(
        "ix_orders_next_step_due_time_active", "orders", ["next_step_due_time"],
        schema=SCHEMA, postgresql_where=sa.text(_in("status", NON_TERMINAL)),
    )
    op.create_index(
        "ix_orders_stock_release_pending", "orders", ["order_id"],
        schema=SCHEMA, postgresql_where=sa.text("stock_release_pending"),
    )

    op.create_table(
        "order_items",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("line_number", sa.SmallInteger, nullable=False),
        sa.Column("product_id", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line_number", name="pk_order_items"),
        sa.ForeignKeyConstraint(
            ["order_id"], [f"{SCHEMA}.orders.order_id"],
            name="fk_order_items_order_id_orders", ondelete="CASCADE",
        ),
        sa.UniqueConstraint("order_id", "product_id", name="uq_order_items_order_id_product_id"),
        sa.CheckConstraint("product_id > 0", name="ck_order_items_product_id_positive"),
        sa.CheckConstraint("quantity > 0", name="ck_order_items_quantity_positive"),
        sa.CheckConstraint("unit_price >= 0", name="ck_order_items_unit_price_not_negative"),
        schema=SCHEMA,
    )

    op.create_table(
        "order_history",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("from_status", sa.Text),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        # The due time this transition set, so a watcher can show every intermediate state.
        sa.Column("next_step_due_time", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_order_history"),
        sa.ForeignKeyConstraint(
            ["order_id"], [f"{SCHEMA}.orders.order_id"],
            name="fk_order_history_order_id_orders", ondelete="CASCADE",
        ),
        # Each status is entered at most once in the lifecycle, so a duplicated transition
        # cannot be recorded even by a buggy writer.
        sa.UniqueConstraint("order_id", "to_status", name="uq_order_history_order_id_to_status"),
        sa.CheckConstraint(
            f"from_status IS NULL OR {_in('from_status', STATUSES)}",
            name="ck_order_history_from_status_known",
        ),
        sa.CheckConstraint(_in("to_status", STATUSES), name="ck_order_history_to_status_known"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_order_history_order_id_id", "order_history", ["order_id", "id"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("order_history", schema=SCHEMA)
    op.drop_table("order_items", schema=SCHEMA)
    op.drop_table("orders", schema=SCHEMA)
