"""Products with stock levels, and reservations of stock per order.

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

SCHEMA = "inventory"


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("price", sa.Numeric(12, 2), nullable=False),
        sa.Column("stock_level", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column(
            "create_time", sa.DateTime(timezone=True), nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.UniqueConstraint("sku", name="uq_products_sku"),
        sa.CheckConstraint("price >= 0", name="ck_products_price_not_negative"),
        sa.CheckConstraint("stock_level >= 0", name="ck_products_stock_level_not_negative"),
        schema=SCHEMA,
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("shortfalls", postgresql.JSONB, nullable=True),
        sa.Column(
            "create_time", sa.DateTime(timezone=True), nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column(
            "update_time", sa.DateTime(timezone=True), nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("order_id", name="pk_reservations"),
        sa.CheckConstraint(
            "status IN ('RESERVED', 'REJECTED', 'RELEASED')",
            name="ck_reservations_status_known",
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "reservation_items",
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("product_id", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "product_id", name="pk_reservation_items"),
        sa.ForeignKeyConstraint(
            ["order_id"], [f"{SCHEMA}.reservations.order_id"],
            name="fk_reservation_items_order_id", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], [f"{SCHEMA}.products.id"],
            name="fk_reservation_items_product_id",
        ),
        sa.CheckConstraint("quantity > 0", name="ck_reservation_items_quantity_positive"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("reservation_items", schema=SCHEMA)
    op.drop_table("reservations", schema=SCHEMA)
    op.drop_table("products", schema=SCHEMA)
