"""deploy/grafana: the dashboard parses, shows what an operator looks for, every query is
PromQL that promtool accepts, and every series it (or an alert rule) names is exported."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import GRAFANA
from tests.deploy.promql import base_name, series_names
from tests.deploy.series import (
    CONTRACT_SERIES,
    ENVOY_SERIES,
    SCRAPE_SERIES,
    alert_queries,
    dashboard,
    dashboard_queries,
    declared_series,
    named_series,
)

pytestmark = pytest.mark.unit

# What the issue asks the dashboard to show, by a panel title and a series it must read.
REQUIRED_PANELS = {
    "Intake and outcomes": "fulfillment_orders_created_total",
    "p50 latency per RPC": "grpc_server_handling_seconds_bucket",
    "p99 latency per RPC": "grpc_server_handling_seconds_bucket",
    "Orders by status": "fulfillment_orders",
    "Reservation outcomes": "fulfillment_reservations_total",
    "Lifecycle queue length": "fulfillment_lifecycle_queue_length",
    "Stale orders": "fulfillment_stale_orders_total",
    "Errors by code": "grpc_server_handled_total",
}


def panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def test_the_dashboard_has_the_panels_the_issue_asks_for() -> None:
    by_title = {panel["title"]: panel for panel in panels()}
    for title, series in REQUIRED_PANELS.items():
        assert title in by_title, f"no panel {title!r}"
        read = {name for target in by_title[title]["targets"] for name in series_names(target["expr"])}
        assert series in read, (title, read)
    assert "grpc_code" in by_title["Errors by code"]["targets"][0]["expr"]
    p99 = by_title["p99 latency per RPC"]["targets"][0]["expr"]
    assert re.search(r"histogram_quantile\(0\.99, sum by \([^)]*\ble\b", p99)


def test_every_panel_is_well_formed_and_reads_the_chosen_prometheus() -> None:
    board = dashboard()
    assert board["uid"] == "fulfillment" and board["title"]
    (variable,) = board["templating"]["list"]
    assert variable["name"] == variable["type"] == "datasource"
    assert variable["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_query_is_promql_promtool_accepts(tmp_path: Path) -> None:
    assert shutil.which("promtool"), "promtool is not installed (apt-get install prometheus)"
    # As recording rules, with Grafana's interval variable given a value.
    rules = [
        {"record": f"dashboard:query_{index}", "expr": expr.replace("$__rate_interval", "5m")}
        for index, (_title, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_metrics_modules_export_the_contract() -> None:
    assert declared_series() >= CONTRACT_SERIES


def test_every_series_the_dashboard_and_the_alerts_name_is_exported() -> None:
    known = CONTRACT_SERIES | declared_series() | ENVOY_SERIES | SCRAPE_SERIES
    unknown = {name: where for name, where in named_series().items() if base_name(name) not in known
               and name not in known}
    assert not unknown, f"named but exported by nothing: {unknown}"


def test_every_contract_series_is_on_the_dashboard_or_in_an_alert() -> None:
    shown = {base_name(name) for name in named_series()}
    assert shown >= CONTRACT_SERIES, CONTRACT_SERIES - shown
    assert alert_queries(), "no alert rules found"


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "fulfillment.yml").read_text())
    by_type = {source["type"]: source for source in datasources["datasources"]}
    assert by_type["prometheus"]["uid"] == dashboard()["templating"]["list"][0]["current"]["value"]
    assert by_type["prometheus"]["isDefault"] is True
    (provider,) = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "fulfillment.yml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
