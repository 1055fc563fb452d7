"""Where each part serves /metrics: INVENTORY/ORDERS/WORKER/MONITOR_METRICS_ADDR."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError, Settings

pytestmark = pytest.mark.unit

VARIABLES = {
    "INVENTORY_METRICS_ADDR": ("inventory_metrics_addr", "127.0.0.1:9101"),
    "ORDERS_METRICS_ADDR": ("orders_metrics_addr", "127.0.0.1:9102"),
    "WORKER_METRICS_ADDR": ("worker_metrics_addr", "127.0.0.1:9103"),
    "MONITOR_METRICS_ADDR": ("monitor_metrics_addr", "127.0.0.1:9104"),
}


def test_every_part_serves_metrics_on_loopback_by_default() -> None:
    settings = Settings.from_env({})
    for field, default in VARIABLES.values():
        assert getattr(settings, field) == default


@pytest.mark.parametrize("variable", VARIABLES)
def test_an_empty_value_turns_that_endpoint_off_and_only_that_one(variable: str) -> None:
    settings = Settings.from_env({variable: ""})
    for name, (field, default) in VARIABLES.items():
        assert getattr(settings, field) == ("" if name == variable else default)


def test_blanks_count_as_empty() -> None:
    assert Settings.from_env({"ORDERS_METRICS_ADDR": "  "}).orders_metrics_addr == ""


@pytest.mark.parametrize("value", ["0.0.0.0:9200", "[::1]:9200", "metrics.internal:80"])
def test_an_address_is_taken_as_given(value: str) -> None:
    assert Settings.from_env({"WORKER_METRICS_ADDR": f" {value} "}).worker_metrics_addr == value


@pytest.mark.parametrize("value", ["9101", "127.0.0.1", "127.0.0.1:", ":9101", "host:http", "127.0.0.1:0",
                                   "127.0.0.1:70000"])
def test_a_malformed_address_is_a_config_error_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="MONITOR_METRICS_ADDR"):
        Settings.from_env({"MONITOR_METRICS_ADDR": value})


def test_up_prints_where_each_part_serves_metrics_or_that_it_is_off(signing_key: str) -> None:
    from services.stack_prepare import banner as up_banner

    settings = Settings.from_env(
        {"WORKER_METRICS_ADDR": "", "GATEWAY_ADMIN_PORT": "9911", "FULFILLMENT_AUTH_SIGNING_KEY": signing_key}
    )
    banner = up_banner(settings, workers=2)
    assert "http://127.0.0.1:9101/metrics" in banner
    assert "http://127.0.0.1:9102/metrics" in banner
    assert "off (WORKER_METRICS_ADDR is empty)" in banner
    assert "http://127.0.0.1:9104/metrics" in banner
    assert "http://127.0.0.1:9911/stats/prometheus" in banner
