"""`fulfillment migrate` creates the database if needed and is a no-op the second time."""

from __future__ import annotations

import subprocess
import uuid

import psycopg2
import pytest

from tests.support import ADMIN_DSN, REPO_ROOT, fulfillment_command

pytestmark = pytest.mark.e2e


def _migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        fulfillment_command("migrate"), env=env, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=120,
    )


def _query(url: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def test_migrate_creates_the_database_and_running_it_twice_changes_nothing(
    service_env: dict[str, str],
) -> None:
    name = f"fulfillment_migrate_{uuid.uuid4().hex[:10]}"
    url = f"{ADMIN_DSN.rpartition('/')[0]}/{name}"
    env = {**service_env, "DATABASE_URL": url}
    try:
        first = _migrate(env)
        assert first.returncode == 0, first.stderr[-2000:]
        assert "database_created" in first.stderr
        schema = """SELECT table_schema, table_name FROM information_schema.tables
                    WHERE table_schema IN ('inventory', 'orders') ORDER BY 1, 2"""
        tables = _query(url, schema)
        versions = _query(url, "SELECT version_num FROM inventory.alembic_version") + _query(
            url, "SELECT version_num FROM orders.alembic_version"
        )
        assert {"products", "reservations"} <= {t for s, t in tables if s == "inventory"}
        assert {"orders", "order_items", "order_history"} <= {t for s, t in tables if s == "orders"}

        second = _migrate(env)
        assert second.returncode == 0, second.stderr[-2000:]
        assert "database_created" not in second.stderr
        assert _query(url, schema) == tables
        assert _query(url, "SELECT version_num FROM inventory.alembic_version") + _query(
            url, "SELECT version_num FROM orders.alembic_version"
        ) == versions
    finally:
        conn = psycopg2.connect(ADMIN_DSN)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def test_migrate_explains_an_unreachable_database(service_env: dict[str, str]) -> None:
    env = {**service_env, "DATABASE_URL": "postgresql://postgres@127.0.0.1:9/nothing"}
    result = _migrate(env)
    assert result.returncode == 2
    assert "cannot reach PostgreSQL" in result.stderr and "Traceback" not in result.stderr
