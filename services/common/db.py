"""Database plumbing: async engines, retried transactions, database creation, migrations."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import psycopg2
from psycopg2 import errors as pg_errors
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.common.logs import log_event

logger = logging.getLogger("fulfillment.db")

T = TypeVar("T")

# serialization_failure and deadlock_detected: the transaction did nothing and may be rerun.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def driver_url(url: str, driver: str) -> str:
    """postgresql://... -> postgresql+<driver>://..., whatever driver the URL named."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"only PostgreSQL URLs are supported, got {parsed.drivername!r}")
    return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def create_engine(url: str, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    return create_async_engine(
        driver_url(url, "asyncpg"),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, with every statement its own transaction (no BEGIN/COMMIT round trips,
    no lock held across a round trip)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


async def run_transaction(
    engine: AsyncEngine,
    work: Callable[[AsyncConnection], Awaitable[T]],
    *,
    attempts: int = 12,
    name: str = "transaction",
) -> T:
    """Run `work` in one transaction, rerunning it on deadlock or serialization failure.

    `work` must be safe to rerun: everything it did is rolled back before the next try.
    Given `autocommit_engine(engine)`, no BEGIN/COMMIT is sent: each statement `work`
    issues is its own transaction, so `work` must write with at most one statement.
    """
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as conn:
                return await work(conn)
        except sa_exc.DBAPIError as exc:
            if sqlstate(exc) not in RETRYABLE_SQLSTATES or attempt == attempts:
                raise
            log_event(
                logger, "transaction_retry", logging.DEBUG,
                name=name, attempt=attempt, sqlstate=sqlstate(exc),
            )
            await asyncio.sleep(random.uniform(0, 0.002 * 2**min(attempt, 8)))
    raise AssertionError("unreachable")


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist. True when it was created."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise ValueError(f"database URL names no database: {parsed!r}")
    admin = parsed.set(drivername="postgresql", database="postgres")
    conn = psycopg2.connect(admin.render_as_string(hide_password=False))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            try:
                cur.execute(f'CREATE DATABASE "{name}"')
            except pg_errors.DuplicateDatabase:
                return False
            return True
    finally:
        conn.close()


def run_migrations(url: str, migrations_dir: Path, schema: str) -> None:
    """Upgrade one service's schema to head; a no-op when it is already there."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["sqlalchemy_url"] = driver_url(url, "psycopg2")
    config.attributes["schema"] = schema
    command.upgrade(config, "head")


def alembic_env(schema: str, target_metadata: object | None = None) -> None:
    """Body of every service's migrations/env.py (online mode only).

    Takes an advisory lock so concurrent `fulfillment migrate` runs queue up instead of
    racing, and creates the schema first because alembic's version table lives in it.
    """
    from alembic import context
    from sqlalchemy import create_engine as create_sync_engine
    from sqlalchemy import text

    config = context.config
    url = config.attributes.get("sqlalchemy_url") or config.get_main_option("sqlalchemy.url")
    engine = create_sync_engine(url)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(hashtext(:s))"), {"s": schema})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.execute(text("SELECT pg_advisory_unlock(hashtext(:s))"), {"s": schema})
        connection.commit()
    engine.dispose()
