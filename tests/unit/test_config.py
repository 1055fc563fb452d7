from __future__ import annotations

import pytest

from services.common.config import ConfigError, Settings, redact_url, split_addr
from services.common.database.engines import ConnectionBudget

pytestmark = pytest.mark.unit


def test_defaults_match_the_contract() -> None:
    s = Settings.from_env({})
    assert s.database_url == "postgresql://postgres@127.0.0.1:5432/fulfillment"
    assert s.inventory_database_url == s.orders_database_url == s.database_url
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert (s.inventory_addr, s.orders_addr) == ("127.0.0.1:50051", "127.0.0.1:50052")
    assert s.gateway_port == 8080
    assert (s.step_delay_min_s, s.step_delay_max_s) == (1.0, 3.0)
    assert (s.stale_after_s, s.sweep_interval_s, s.stale_retries) == (60.0, 10.0, 2)


def test_per_service_urls_default_to_database_url_and_can_be_overridden() -> None:
    s = Settings.from_env(
        {"DATABASE_URL": "postgresql://a/x", "ORDERS_DATABASE_URL": "postgresql://b/y"}
    )
    assert s.inventory_database_url == "postgresql://a/x"
    assert s.orders_database_url == "postgresql://b/y"


def test_zero_step_delays_are_allowed() -> None:
    s = Settings.from_env({"FULFILLMENT_STEP_DELAY_MIN_S": "0", "FULFILLMENT_STEP_DELAY_MAX_S": "0"})
    assert (s.step_delay_min_s, s.step_delay_max_s) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_PORT": "http"}, "GATEWAY_PORT must be a int"),
        ({"FULFILLMENT_STALE_RETRIES": "-1"}, "FULFILLMENT_STALE_RETRIES must be >= 0"),
        ({"FULFILLMENT_DB_CONNECTIONS": "1"}, "FULFILLMENT_DB_CONNECTIONS must be >= 2"),
        ({"FULFILLMENT_PRICE_CACHE_SIZE": "lots"}, "FULFILLMENT_PRICE_CACHE_SIZE must be a int"),
        (
            {"FULFILLMENT_STEP_DELAY_MIN_S": "5", "FULFILLMENT_STEP_DELAY_MAX_S": "1"},
            "MAX_S must be >= FULFILLMENT_STEP_DELAY_MIN_S",
        ),
    ],
)
def test_bad_values_are_named_in_the_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_connections_are_split_two_thirds_to_the_statement_pool() -> None:
    settings = Settings.from_env({"FULFILLMENT_DB_CONNECTIONS": "30"})
    assert ConnectionBudget.of(settings.db_connections) == ConnectionBudget(statements=20, sqlalchemy=10)
    assert ConnectionBudget.of(Settings().db_connections) == ConnectionBudget(16, 8)
    assert ConnectionBudget.of(2) == ConnectionBudget(1, 1)


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.gateway_port = 1  # type: ignore[misc]


def test_redact_url_hides_passwords() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/f") == "postgresql://app:***@db:5432/f"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_split_addr() -> None:
    assert split_addr("0.0.0.0:50051") == ("0.0.0.0", 50051)
    assert split_addr("[::]:80") == ("::", 80)
    with pytest.raises(ConfigError):
        split_addr("localhost")
