"""Fixtures for the lifecycle end-to-end tests: a database of their own, the services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lifecycle.stack import Services, purge_broker
from tests.support import private_database


@pytest.fixture(scope="session")
def lifecycle_database_url() -> Iterator[str]:
    """A database only these tests use: the monitors they run sweep every non-terminal
    order, and must not meet orders other test modules left behind on purpose."""
    with private_database("fulfillment_lifecycle") as url:
        yield url


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
    running = Services(lifecycle_env, lifecycle_logs)
    try:
        yield running.start()
    finally:
        running.stop()
        purge_broker(redis_url)
