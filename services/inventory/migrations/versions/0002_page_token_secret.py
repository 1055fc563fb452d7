"""The secret this service signs its page tokens with: random, created once, one row.

Every process and replica of the service reads it at startup, so a token one issued is
accepted by all; FULFILLMENT_PAGE_TOKEN_SECRET, when set, is used instead.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "inventory"


def upgrade() -> None:
    table = op.create_table(
        "page_token_secret",
        # Always true: the primary key on a constant column allows exactly one row.
        sa.Column("singleton", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column(
            "create_time", sa.DateTime(timezone=True), nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("singleton", name="pk_page_token_secret"),
        sa.CheckConstraint("singleton", name="ck_page_token_secret_singleton"),
        sa.CheckConstraint("length(secret) >= 32", name="ck_page_token_secret_length"),
        schema=SCHEMA,
    )
    op.bulk_insert(table, [{"singleton": True, "secret": secrets.token_bytes(32)}])


def downgrade() -> None:
    op.drop_table("page_token_secret", schema=SCHEMA)
