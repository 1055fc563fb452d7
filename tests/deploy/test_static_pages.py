"""/openapi.json, /docs and /console/ in containers: Envoy's rendered configs route every
file of gateway/static to CONTAINER_STATIC_DIR, and compose and Kubernetes put the files
there (a bind mount; an init container copying them from the app image)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import yaml

from services.gateway_static import CONTAINER_STATIC_DIR, STATIC_DIR, static_files
from tests.deploy.manifests import (
    APP_IMAGE,
    DEPLOY,
    K8S,
    REPO_ROOT,
    dockerfile_stages,
    k8s_resources,
    load_compose,
    pod_spec,
)

pytestmark = pytest.mark.unit

# A ConfigMap (like any object) is at most 1 MiB; the pages alone are more.
CONFIGMAP_LIMIT_BYTES = 1024 * 1024


def _compose_config() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "envoy" / "envoy.compose.yaml").read_text())


def _k8s_config() -> dict[str, Any]:
    return yaml.safe_load(k8s_resources("ConfigMap")["envoy-config"]["data"]["envoy.yaml"])


def _served_files(config: dict[str, Any]) -> set[str]:
    (listener,) = config["static_resources"]["listeners"]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (host,) = manager["route_config"]["virtual_hosts"]
    return {
        route["direct_response"]["body"]["filename"]
        for route in host["routes"]
        if "filename" in route.get("direct_response", {}).get("body", {})
    }


def _image_static_dir() -> str:
    """Where the Dockerfile's runtime stage puts gateway/static."""
    copies = [
        shlex.split(i.arguments) for i in dockerfile_stages()[-1]
        if i.keyword == "COPY" and "--from=" not in i.arguments
    ]
    (destination,) = [words[-1] for words in copies if words[:-1] == ["gateway/static"]]
    return destination


@pytest.mark.parametrize("config", [_compose_config, _k8s_config], ids=["compose", "kubernetes"])
def test_every_file_of_gateway_static_is_routed_from_the_container_directory(config) -> None:
    expected = {f"{CONTAINER_STATIC_DIR}/{file.relative}" for file in static_files()}
    assert {f"{CONTAINER_STATIC_DIR}/docs/index.html"} <= expected
    assert _served_files(config()) == expected, "stale: run `uv run fulfillment render-deploy`"


def test_compose_mounts_gateway_static_read_only_where_envoy_reads_it() -> None:
    envoy = load_compose()["services"]["envoy"]
    mounts = {}
    for volume in envoy["volumes"]:
        source, target, *options = volume.split(":")
        mounts[target] = ((DEPLOY / source).resolve(), options)
    assert mounts[CONTAINER_STATIC_DIR] == (STATIC_DIR, ["ro"])


def test_the_image_carries_gateway_static() -> None:
    assert (REPO_ROOT / "gateway" / "static").is_dir()
    assert _image_static_dir().startswith("/app/")


def test_kubernetes_copies_the_pages_from_the_app_image_into_a_volume_envoy_reads() -> None:
    spec = pod_spec(k8s_resources("Deployment")["envoy"])
    (init,) = spec["initContainers"]
    assert init["image"].split(":")[0] == APP_IMAGE
    assert init["command"] == ["cp", "-R", f"{_image_static_dir()}/.", f"{CONTAINER_STATIC_DIR}/"]
    (init_mount,) = init["volumeMounts"]
    assert init_mount["mountPath"] == CONTAINER_STATIC_DIR
    assert {"cpu", "memory"} <= set(init["resources"]["requests"]) & set(init["resources"]["limits"])
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[init_mount["name"]]
    (envoy,) = spec["containers"]
    (envoy_mount,) = [m for m in envoy["volumeMounts"] if m["name"] == init_mount["name"]]
    assert envoy_mount == {"name": init_mount["name"], "mountPath": CONTAINER_STATIC_DIR, "readOnly": True}
    # Not inside /etc/envoy: the ConfigMap's read-only volume takes no mount point.
    assert not CONTAINER_STATIC_DIR.startswith("/etc/envoy/")


def test_the_envoy_configmap_stays_well_under_the_object_size_limit() -> None:
    size = len((K8S / "envoy-configmap.yaml").read_bytes())
    assert size < CONFIGMAP_LIMIT_BYTES / 4, size
    assert sum(file.size for file in static_files()) > CONFIGMAP_LIMIT_BYTES, (
        "the pages would not fit in a ConfigMap: why they come from the image"
    )
