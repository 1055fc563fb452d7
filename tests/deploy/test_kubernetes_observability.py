"""deploy/k8s observed: scrape annotations that match each pod's metrics port, the parts'
METRICS_ADDR on all interfaces, the dashboard and the alert rules as ConfigMaps equal to
their sources, and a Prometheus config that scrapes the annotated pods."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli import build_parser
from services.common.config import Settings, split_addr
from services.devtools.observability_manifests import observability_manifests
from services.gateway import container_target
from tests.deploy.manifests import (
    DASHBOARD,
    K8S,
    METRICS_ADDRESSES,
    OBSERVABILITY,
    REPO_ROOT,
    container_env,
    k8s_resources,
    pod_spec,
)

pytestmark = pytest.mark.unit

KUBERNETES_PROMETHEUS = OBSERVABILITY / "prometheus-kubernetes.yml"


def deployment(name: str) -> dict[str, Any]:
    return k8s_resources("Deployment")[name]


def only_container(name: str) -> dict[str, Any]:
    (container,) = pod_spec(deployment(name))["containers"]
    return container


def annotations(name: str) -> dict[str, str]:
    found: dict[str, str] = deployment(name)["spec"]["template"]["metadata"].get("annotations", {})
    return found


def ports(name: str) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in only_container(name).get("ports", [])}


@pytest.mark.parametrize(("part", "variable"), METRICS_ADDRESSES.items())
def test_each_part_serves_metrics_on_all_interfaces_where_its_annotations_point(
    part: str, variable: str
) -> None:
    env = container_env(only_container(part), k8s_resources("ConfigMap"))
    host, port = split_addr(env[variable])
    assert host == "0.0.0.0", part
    assert port == split_addr(getattr(Settings(), variable.lower()))[1], part
    assert getattr(Settings.from_env(env), variable.lower()) == env[variable]
    assert ports(part)["metrics"] == port
    assert annotations(part) == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }


def test_envoys_statistics_are_scraped_on_its_admin_port() -> None:
    admin = container_target("inventory", "orders").admin_port
    assert ports("envoy")["admin"] == admin
    assert annotations("envoy") == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(admin),
        "prometheus.io/path": "/stats/prometheus",
    }


def test_no_service_exposes_a_metrics_port() -> None:
    for name, service in k8s_resources("Service").items():
        for port in service["spec"]["ports"]:
            assert port["targetPort"] not in ("metrics", "admin"), name


def test_committed_configmaps_are_what_render_deploy_writes(tmp_path: Path) -> None:
    args = build_parser().parse_args(["render-deploy", "--root", str(tmp_path)])
    assert args.run(Settings(), args) == 0
    for relative, _text in observability_manifests():
        committed = REPO_ROOT / relative
        assert (tmp_path / relative).read_text() == committed.read_text(), (
            f"{relative} is stale: run `uv run fulfillment render-deploy`"
        )


def test_the_dashboard_configmap_carries_the_dashboard_for_grafanas_sidecar() -> None:
    configmap = k8s_resources("ConfigMap")["fulfillment-dashboard"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["data"] == {DASHBOARD.name: DASHBOARD.read_text()}


def test_the_alert_rules_configmap_carries_the_rule_file() -> None:
    configmap = k8s_resources("ConfigMap")["fulfillment-alert-rules"]
    assert configmap["data"] == {"alerts.yml": (OBSERVABILITY / "alerts.yml").read_text()}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert {"grafana-dashboard.yaml", "alert-rules.yaml"} <= set(kustomization["resources"])


def test_kubernetes_prometheus_keeps_annotated_pods_and_names_jobs_as_compose() -> None:
    config = yaml.safe_load(KUBERNETES_PROMETHEUS.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    rules = {rule.get("target_label") or rule["action"]: rule for rule in job["relabel_configs"]}
    meta = "__meta_kubernetes_pod_annotation_prometheus_io_"
    assert rules["keep"]["source_labels"] == [f"{meta}scrape"] and rules["keep"]["regex"] == "true"
    assert rules["__metrics_path__"]["source_labels"] == [f"{meta}path"]
    assert rules["job"]["source_labels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
    address = rules["__address__"]
    assert address["source_labels"] == ["__address__", f"{meta}port"]
    # What discovery gives for a pod port, rewritten to the annotated one.
    rewritten = re.sub(
        f"^{address['regex']}$", address["replacement"].replace("$", "\\"), "10.1.2.3:50052;9102"
    )
    assert rewritten == "10.1.2.3:9102"
    # The jobs are those of the compose config, which the alerts and the dashboard name.
    compose = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    jobs = {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        for d in k8s_resources("Deployment").values()
        if d["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"
    }
    assert jobs == {j["job_name"] for j in compose["scrape_configs"]}
