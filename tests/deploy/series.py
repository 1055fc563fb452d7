"""The series the dashboard and the alert rules may name: the contract's, those the
metrics modules declare, Envoy's own and Prometheus's `up`."""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.manifests import DASHBOARD, OBSERVABILITY, REPO_ROOT
from tests.deploy.promql import series_names

METRICS_PACKAGE = REPO_ROOT / "services" / "common" / "metrics"

# ARCHITECTURE.md, Observability: names and labels fixed (histograms by their base name).
CONTRACT_SERIES = {
    "grpc_server_handled_total",
    "grpc_server_handling_seconds",
    "fulfillment_orders_created_total",
    "fulfillment_order_transitions_total",
    "fulfillment_reservations_total",
    "fulfillment_stale_orders_total",
    "fulfillment_lifecycle_queue_length",
}
# Envoy's admin /stats/prometheus (checked against a live Envoy by tests/e2e).
ENVOY_SERIES = {"envoy_http_downstream_rq_xx"}
# Made by Prometheus itself for every target, never served by one.
SCRAPE_SERIES = {"up"}

_COUNTERS = {"Counter", "CounterMetricFamily"}
_METRICS = _COUNTERS | {"Gauge", "Histogram", "Summary", "GaugeMetricFamily", "HistogramMetricFamily"}


def _declared_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets if isinstance(target, ast.Name)
    }
    names = set()
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id in _METRICS and call.args):
            continue
        first = call.args[0]
        name = first.value if isinstance(first, ast.Constant) else constants.get(getattr(first, "id", ""))
        if not isinstance(name, str):
            continue
        if call.func.id in _COUNTERS and not name.endswith("_total"):
            name += "_total"
        names.add(name)
    return names


@functools.cache
def declared_series() -> frozenset[str]:
    """Every series name the metrics modules create (counters with their _total)."""
    return frozenset(name for path in sorted(METRICS_PACKAGE.glob("*.py")) for name in _declared_in(path))


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"] if panel["type"] != "row"
        for target in panel["targets"]
    ]


def alert_queries() -> list[tuple[str, str]]:
    groups = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


def named_series() -> dict[str, set[str]]:
    """Every series the dashboard and the alert rules read -> where it is read."""
    found: dict[str, set[str]] = {}
    for where, expr in [*dashboard_queries(), *alert_queries()]:
        for name in series_names(expr):
            found.setdefault(name, set()).add(where)
    return found
