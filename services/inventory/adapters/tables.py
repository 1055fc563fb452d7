"""The inventory schema as SQLAlchemy Core tables; migrations/ creates the same shape."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA = "inventory"

metadata = MetaData(
    schema=SCHEMA,
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    },
)

products = Table(
    "products",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("sku", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("price", Numeric(12, 2), nullable=False),
    Column("stock_level", BigInteger, nullable=False, server_default="0"),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("sku"),
    CheckConstraint("price >= 0", name="price_not_negative"),
    CheckConstraint("stock_level >= 0", name="stock_level_not_negative"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("status", Text, nullable=False),
    # For REJECTED: [{"product_id", "requested", "available"}] as seen when it was refused.
    Column("shortfalls", JSONB, nullable=True),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('RESERVED', 'REJECTED', 'RELEASED')", name="status_known"),
)

reservation_items = Table(
    "reservation_items",
    metadata,
    Column(
        "order_id", Text, ForeignKey("reservations.order_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("product_id", BigInteger, ForeignKey("products.id"), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    PrimaryKeyConstraint("order_id", "product_id"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

# The secret page tokens are signed with (services/common/page_token_secret.py): one row.
page_token_secret = Table(
    "page_token_secret",
    metadata,
    Column("singleton", Boolean, nullable=False, server_default=true()),
    Column("secret", LargeBinary, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("singleton"),
    CheckConstraint("singleton", name="singleton"),
    CheckConstraint("length(secret) >= 32", name="length"),
)
