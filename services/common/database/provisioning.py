"""Creating a service's database and migrating its schema (Alembic)."""

from __future__ import annotations

from pathlib import Path

import psycopg2
from psycopg2 import errors as pg_errors
from sqlalchemy.engine import make_url

from services.common.database.urls import admin_url, driver_url


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist. True when it was created."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise ValueError(f"database URL names no database: {parsed!r}")
    conn = psycopg2.connect(admin_url(url))
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


def run_migrations(url: str, migrations_dir: Path, schema: str) -> str | None:
    """Upgrade one service's schema to head (a no-op when it is already there); returns the
    head revision."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["sqlalchemy_url"] = driver_url(url, "psycopg2")
    config.attributes["schema"] = schema
    command.upgrade(config, "head")
    return ScriptDirectory.from_config(config).get_current_head()


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
