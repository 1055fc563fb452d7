"""Fixtures for the lifecycle end-to-end tests: a database of their own, the services."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg2
import pytest

from services.common.config import Settings
from services.migrations import migrate_all
from tests.lifecycle.stack import Services, purge_broker

ADMIN_DSN = os.environ.get(
    "FULFILLMENT_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def lifecycle_database_url() -> Iterator[str]:
    """A database only these tests use: the monitors they run sweep every non-terminal
    order, and must not meet orders other test modules left behind on purpose."""
    name = f"fulfillment_lifecycle_{uuid.uuid4().hex[:10]}"
    url = f"{ADMIN_DSN.rpartition('/')[0]}/{name}"
    migrate_all(replace(Settings.from_env({}), inventory_database_url=url, orders_database_url=url))
    yield url
    conn = psycopg2.connect(ADMIN_DSN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="session")
def lifecycle_env(
    service_env: dict[str, str], lifecycle_database_url: str
) -> dict[str, str]:
    return {**service_env, "DATABASE_URL": lifecycle_database_url}


@pytest.fixture(scope="session")
def lifecycle_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lifecycle-logs")


@pytest.fixture(scope="session")
def services(
    lifecycle_env: dict[str, str], lifecycle_logs: Path, redis_url: str
) -> Iterator[Services]:
    """Inventory and orders as `fulfillment serve` subprocesses, shared by the modules
    that use this run's Redis db; each module brings its own worker and monitors."""
    purge_broker(redis_url)
    running = Services(lifecycle_env, lifecycle_logs).start()
    yield running
    running.stop()
    purge_broker(redis_url)
