"""The orders schema as SQLAlchemy Core tables; migrations/versions/ creates it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP, UUID

SCHEMA = "orders"
CHANGE_CHANNEL = "order_events"

metadata = MetaData(schema=SCHEMA)

orders = Table(
    "orders",
    metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("customer_name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_note", Text, nullable=False),
    Column("create_time", TIMESTAMP(timezone=True), nullable=False),
    Column("update_time", TIMESTAMP(timezone=True), nullable=False),
    Column("next_step_due_time", TIMESTAMP(timezone=True)),
    Column("stale_claims", Integer, nullable=False),
    Column("stock_release_pending", Boolean, nullable=False),
    Column("request_id", Text),
    Column("request_fingerprint", Text),
    # request_ids are scoped per customer.
    UniqueConstraint("customer_id", "request_id", name="uq_orders_customer_id_request_id"),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", UUID(as_uuid=True), ForeignKey(orders.c.order_id), primary_key=True),
    Column("line_number", SmallInteger, primary_key=True),
    Column("product_id", BigInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(12, 2), nullable=False),
)

order_history = Table(
    "order_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("order_id", UUID(as_uuid=True), ForeignKey(orders.c.order_id), nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("time", TIMESTAMP(timezone=True), nullable=False),
    Column("note", Text, nullable=False),
    Column("next_step_due_time", TIMESTAMP(timezone=True)),
    # Who caused the transition: "customer:<sub>", "admin:<sub>", "service:<sub>".
    Column("actor", Text, nullable=False),
)

# The secret page tokens are signed with (services/common/page_token_secret.py): one row.
page_token_secret = Table(
    "page_token_secret",
    metadata,
    Column("singleton", Boolean, primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("create_time", TIMESTAMP(timezone=True), nullable=False),
)
