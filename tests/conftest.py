"""Fixtures shared by every tier: a private database and Redis db per test run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.config import Settings
from services.devtools.stores import NoFreeRedisDb, claim_redis_db
from tests.support import in_process_settings, private_database

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test belongs to exactly one tier, so `-m unit` (or integration, e2e) runs a
    tier alone and nothing falls between them."""
    wrong = [
        f"{item.nodeid}: {tiers or 'no tier'}"
        for item in items
        if len(tiers := [m.name for m in item.iter_markers() if m.name in TIERS]) != 1
    ]
    if wrong:
        raise pytest.UsageError(
            "every test needs exactly one of the markers " + ", ".join(TIERS) + ":\n  "
            + "\n  ".join(wrong)
        )


REDIS_BASE = os.environ.get("FULFILLMENT_TEST_REDIS", "redis://127.0.0.1:6379")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of our own for this test run, migrated, dropped at the end."""
    with private_database("fulfillment_test") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis db number no other test run (or benchmark) holds, flushed before and after."""
    try:
        url, release = claim_redis_db(REDIS_BASE)
    except NoFreeRedisDb:
        pytest.fail("no free Redis db number (1-15) for this test run")
    yield url
    release()


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test run's own token signing key (created on first use), so that no test
    touches the user's state directory; tests/auth.py mints with it."""
    return str(tmp_path_factory.mktemp("auth") / "signing-key.pem")


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, signing_key: str) -> Settings:
    """Configuration for in-process servers: private stores, port 0, no step delays."""
    return in_process_settings(signing_key, database_url, redis_url)


@pytest.fixture(scope="session")
def service_env(database_url: str, redis_url: str, signing_key: str) -> dict[str, str]:
    """Environment for `fulfillment ...` subprocesses pointed at this run's stores and
    signing key."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FULFILLMENT_", "GATEWAY_", "OTEL_")) and not k.endswith("_METRICS_ADDR")
    }
    env.update(
        # No /metrics listeners unless a test asks for them on ports it picked (the
        # defaults 9101-9104 would collide with a developer's `up` and with each other).
        INVENTORY_METRICS_ADDR="",
        ORDERS_METRICS_ADDR="",
        WORKER_METRICS_ADDR="",
        MONITOR_METRICS_ADDR="",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        FULFILLMENT_AUTH_SIGNING_KEY=signing_key,
        FULFILLMENT_STEP_DELAY_MIN_S="0",
        FULFILLMENT_STEP_DELAY_MAX_S="0",
        PYTHONUNBUFFERED="1",
    )
    env.pop("INVENTORY_DATABASE_URL", None)
    env.pop("ORDERS_DATABASE_URL", None)
    return env


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path
