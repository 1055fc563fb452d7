"""deploy/docker-compose.yml observed: every part serves /metrics inside the network where
Prometheus scrapes it, Grafana gets its datasources and dashboard, traces go to Jaeger.
Checked statically: there is no Docker engine here."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.common.config import Settings, split_addr
from services.common.tracing.config import TracingConfig
from services.gateway import container_target
from tests.deploy.manifests import (
    DASHBOARD,
    DEPLOY,
    GRAFANA,
    METRICS_ADDRESSES,
    OBSERVABILITY,
    load_compose,
    with_defaults,
)

pytestmark = pytest.mark.unit

TRACED_PARTS = ("inventory", "orders", "worker", "monitor")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def env(service: dict[str, Any]) -> dict[str, str]:
    return {k: with_defaults(v) for k, v in (service.get("environment") or {}).items()}


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository path bind-mounted there (named volumes left out)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            assert (DEPLOY / source).exists(), source
            found[target] = (DEPLOY / source).resolve()
    return found


def scrape_jobs() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


def published(service: dict[str, Any]) -> dict[int, list[str]]:
    ports = {}
    for mapping in service.get("ports", []):
        *host, container = with_defaults(mapping).split(":")
        ports[int(container)] = host
    return ports


@pytest.mark.parametrize(("part", "variable"), METRICS_ADDRESSES.items())
def test_each_part_serves_metrics_inside_the_network_where_prometheus_scrapes(
    services: dict[str, dict[str, Any]], part: str, variable: str
) -> None:
    host, port = split_addr(env(services[part])[variable])
    assert host == "0.0.0.0", part
    assert port == split_addr(getattr(Settings(), variable.lower()))[1], part
    assert getattr(Settings.from_env(env(services[part])), variable.lower()) == f"0.0.0.0:{port}"
    (discovery,) = scrape_jobs()[part]["dns_sd_configs"]
    assert discovery["names"] == [part] and discovery["port"] == port
    assert port not in published(services[part]), "metrics stay inside the network"


def test_prometheus_reads_envoys_admin_stats_inside_the_network(services: dict[str, dict[str, Any]]) -> None:
    admin_port = container_target("inventory", "orders").admin_port
    envoy_config = yaml.safe_load((DEPLOY / "envoy" / "envoy.compose.yaml").read_text())
    assert envoy_config["admin"]["address"]["socket_address"]["address"] == "0.0.0.0"
    job = scrape_jobs()["envoy"]
    assert job["static_configs"] == [{"targets": [f"envoy:{admin_port}"]}]
    assert job["metrics_path"] == "/stats/prometheus"
    assert published(services["envoy"])[admin_port][0] == "127.0.0.1"


def test_prometheus_loads_its_config_and_the_alert_rules(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    files = mounts(prometheus)
    config_path = next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))
    assert files[config_path] == OBSERVABILITY / "prometheus.yml"
    config_dir = Path(config_path).parent
    for rule_file in yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())["rule_files"]:
        assert files[str(config_dir / rule_file)] == OBSERVABILITY / rule_file
    assert "wget" in prometheus["healthcheck"]["test"]


def test_grafana_is_provisioned_with_prometheus_jaeger_and_the_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    files = mounts(grafana)
    assert files["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "fulfillment.yml").read_text())
    (provider,) = provider["providers"]
    assert files[provider["options"]["path"]] == DASHBOARD.parent
    home = env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "fulfillment.yml").read_text())
    urls = {source["type"]: urlsplit(source["url"]) for source in sources["datasources"]}
    assert (urls["prometheus"].hostname, urls["prometheus"].port) == ("prometheus", 9090)
    assert 9090 in published(services["prometheus"])
    assert (urls["jaeger"].hostname, urls["jaeger"].port) == ("jaeger", 16686)
    assert 16686 in published(services["jaeger"])
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


@pytest.mark.parametrize("part", TRACED_PARTS)
def test_every_part_sends_its_traces_to_jaeger(services: dict[str, dict[str, Any]], part: str) -> None:
    config = TracingConfig.from_env(env(services[part]))
    assert config.enabled and config.otlp is not None, part
    assert (config.otlp.host, config.otlp.port, config.otlp.tls) == ("jaeger", 4317, False)
    assert env(services["jaeger"])["COLLECTOR_OTLP_ENABLED"] == "true"


def test_the_parts_name_themselves_in_traces(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "OTEL_SERVICE_NAME" not in env(service), name


def test_the_observers_are_reachable_from_this_machine_only(services: dict[str, dict[str, Any]]) -> None:
    for name in ("prometheus", "grafana", "jaeger"):
        for port, host in published(services[name]).items():
            assert host[0] == "127.0.0.1", (name, port)
