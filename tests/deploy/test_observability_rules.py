"""deploy/observability: the Prometheus config and alert rules, checked and unit-tested
with promtool (Debian package `prometheus`), and every alert documented and tested."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import METRICS_DEFAULT_PORTS, OBSERVABILITY
from tests.deploy.promql import series_names

pytestmark = pytest.mark.unit

PROMETHEUS_CONFIG = OBSERVABILITY / "prometheus.yml"
ALERTS = OBSERVABILITY / "alerts.yml"
ALERTS_TEST = OBSERVABILITY / "alerts_test.yml"
SEVERITIES = {"page", "warning"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which("promtool"), "promtool is not installed (apt-get install prometheus)"
    return subprocess.run(
        ["promtool", *args], cwd=OBSERVABILITY, capture_output=True, text=True, timeout=60,
        check=False,
    )


def alert_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_promtool_accepts_the_config_and_its_rule_files() -> None:
    checked = promtool("check", "config", PROMETHEUS_CONFIG.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout + checked.stderr


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", ALERTS.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alert_rule_unit_tests_pass() -> None:
    tested = promtool("test", "rules", ALERTS_TEST.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_config_loads_the_alert_rules() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == [ALERTS.name]
    assert yaml.safe_load(ALERTS_TEST.read_text())["rule_files"] == [ALERTS.name]


def test_every_part_and_envoy_is_scraped_on_its_metrics_port() -> None:
    jobs = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}
    assert set(jobs) == {*METRICS_DEFAULT_PORTS, "envoy"}
    for part, port in METRICS_DEFAULT_PORTS.items():
        (discovery,) = jobs[part]["dns_sd_configs"]
        # By DNS name, so each replica of a scaled service is a target of its own.
        assert (discovery["names"], discovery["type"], discovery["port"]) == ([part], "A", port)
        assert jobs[part].get("metrics_path", "/metrics") == "/metrics"
    envoy = jobs["envoy"]
    assert envoy["metrics_path"] == "/stats/prometheus"
    assert envoy["static_configs"] == [{"targets": ["envoy:9901"]}]


@pytest.mark.parametrize("name", sorted(alert_rules()))
def test_every_alert_says_how_bad_and_what_to_do(name: str) -> None:
    rule = alert_rules()[name]
    assert rule["labels"]["severity"] in SEVERITIES
    assert set(rule["annotations"]) >= {"summary", "description"}
    assert len(rule["annotations"]["description"]) > len(rule["annotations"]["summary"])
    assert rule.get("for"), f"{name} would page on a single evaluation"


def test_the_pages_the_issue_asks_for_exist() -> None:
    read_by = {name: series_names(rule["expr"]) for name, rule in alert_rules().items()}
    assert {"fulfillment_orders_created_total", "fulfillment_order_transitions_total"} <= read_by[
        "FulfillmentNoOrdersDelivered"
    ]
    assert read_by["FulfillmentStaleOrdersFailing"] == {"fulfillment_stale_orders_total"}
    assert read_by["FulfillmentLifecycleQueueGrowing"] == {"fulfillment_lifecycle_queue_length"}
    assert read_by["FulfillmentGrpcServerErrors"] == {"grpc_server_handled_total"}


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == set(alert_rules()), "alerts never shown to fire"
    assert quiet == set(alert_rules()), "alerts never shown to stay quiet"


def test_series_names_reads_metric_names_only() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (grpc_method, le) '
        '(rate(grpc_server_handling_seconds_bucket{grpc_code!="OK"}[5m]))) '
        "/ ignoring(le) group_left up offset 5m > bool 1e3 or vector(0)"
    )
    assert series_names(expr) == {"grpc_server_handling_seconds_bucket", "up"}
