"""Keys reach the containers as secrets, each only where it is needed, and never through
the image or the repository: docker compose, Kubernetes, the Dockerfile, checked statically."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import PurePosixPath
from typing import Any

import pytest

from services.gateway import CONTAINER_JWKS
from tests.deploy.manifests import (
    APP_IMAGE,
    DEPLOY,
    REPO_ROOT,
    dockerfile_stages,
    k8s_documents,
    load_compose,
    pod_spec,
    workloads,
)

pytestmark = pytest.mark.unit

JWKS_FILE = "jwks.json"
SIGNING_KEY_FILE = "signing-key.pem"
AUTH_SECRET = "fulfillment-auth"
# Who holds what: every service verifies with the key set, the gateway too; the signing
# key only where service tokens are minted. The migration holds neither.
HOLDERS = {
    "inventory": {JWKS_FILE},
    "orders": {JWKS_FILE, SIGNING_KEY_FILE},
    "worker": {SIGNING_KEY_FILE},
    "monitor": {SIGNING_KEY_FILE},
    "migrate": set(),
    "envoy": {JWKS_FILE},
}
VARIABLE_OF = {JWKS_FILE: "FULFILLMENT_AUTH_JWKS", SIGNING_KEY_FILE: "FULFILLMENT_AUTH_SIGNING_KEY"}
KEY_PATTERNS = ("*.pem", "*.key", "*jwks*.json", "*.p12")


def compose_files(service: dict[str, Any], secrets: dict[str, Any]) -> dict[str, str]:
    """The secret files a compose service gets: file name -> path in the container."""
    files = {}
    for reference in service.get("secrets", []):
        assert isinstance(reference, dict), "long syntax, so the target path is explicit"
        source = secrets[reference["source"]]["file"]
        files[PurePosixPath(source).name] = reference["target"]
    return files


def test_compose_mounts_each_key_where_it_is_needed_at_the_path_its_setting_names() -> None:
    compose = load_compose()
    secrets = compose["secrets"]
    for name, secret in secrets.items():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/"), name
    for name, service in compose["services"].items():
        files = compose_files(service, secrets)
        assert set(files) == HOLDERS.get(name, set()), name
        environment = service.get("environment") or {}
        for file, target in files.items():
            if name == "envoy":
                assert target == CONTAINER_JWKS
            else:
                assert environment[VARIABLE_OF[file]] == target, (name, file)


def secret_volumes(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v["secret"] for v in spec.get("volumes", []) if "secret" in v}


def test_kubernetes_mounts_each_key_where_it_is_needed_readable_by_the_pod_user() -> None:
    seen = set()
    for key, workload in workloads():
        name = workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        spec = pod_spec(workload)
        volumes = secret_volumes(spec)
        (container,) = spec["containers"]
        env = {item["name"]: item.get("value") for item in container.get("env", [])}
        files = {}
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes:
                continue
            volume = volumes[mount["name"]]
            assert volume["secretName"] == AUTH_SECRET, key
            assert mount["readOnly"] is True, key
            mode = volume["defaultMode"]
            context = spec["securityContext"]
            assert mode & 0o004 or (mode & 0o040 and context.get("fsGroup") == context["runAsGroup"]), (
                f"{key}: the pod's user cannot read its secret files"
            )
            assert not mode & 0o002 and not mode & 0o020, key
            for item in volume["items"]:
                assert item["key"] == item["path"], key
                files[item["key"]] = f"{mount['mountPath']}/{item['path']}"
        assert set(files) == HOLDERS[name], key
        seen.add(name)
        for file, path in files.items():
            if container["image"] == APP_IMAGE:
                assert env[VARIABLE_OF[file]] == path, (key, file)
            else:
                assert path == CONTAINER_JWKS, key
    assert seen == set(HOLDERS)


def readme_secrets() -> dict[str, set[str]]:
    """`kubectl create secret generic NAME --from-...=KEY...` in deploy/README.md."""
    text = (DEPLOY / "README.md").read_text().replace("\\\n", " ")
    found: dict[str, set[str]] = {}
    for command in re.findall(r"kubectl create secret generic [^\n]+", text):
        name = command.split()[4]
        found[name] = set(re.findall(r"--from-(?:literal|file)=([\w.-]+)=", command))
    return found


def test_every_secret_the_manifests_use_is_created_by_the_operator_as_documented() -> None:
    assert not [d for d in k8s_documents() if d["kind"] == "Secret"], "no Secret is committed"
    used: dict[str, set[str]] = {}
    for _key, workload in workloads():
        spec = pod_spec(workload)
        for volume in secret_volumes(spec).values():
            used.setdefault(volume["secretName"], set()).update(i["key"] for i in volume["items"])
        for container in spec["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    used.setdefault(ref["name"], set()).add(ref["key"])
    documented = readme_secrets()
    for name, keys in used.items():
        assert name in documented, f"deploy/README.md does not say how to create Secret {name}"
        assert keys <= documented[name], (name, keys - documented[name])


def test_no_key_is_committed_under_deploy() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "deploy"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "deploy/ is tracked"
    for path in tracked:
        assert not path.startswith("deploy/secrets/"), path
        assert not any(fnmatch.fnmatch(PurePosixPath(path).name, p) for p in KEY_PATTERNS), path
        assert "PRIVATE KEY-----" not in (REPO_ROOT / path).read_text(errors="replace"), path
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert "/deploy/secrets/" in ignored


def test_the_image_copies_no_key() -> None:
    ignored = [
        line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "deploy/secrets" in ignored
    for pattern in KEY_PATTERNS[:2]:
        assert f"**/{pattern}" in ignored, pattern
    for stage in dockerfile_stages():
        for instruction in stage:
            if instruction.keyword not in ("COPY", "ADD") or "--from=" in instruction.arguments:
                continue
            sources = [w for w in instruction.arguments.split() if not w.startswith("--")][:-1]
            for source in sources:
                root = REPO_ROOT / source
                files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
                for file in files:
                    relative = file.relative_to(REPO_ROOT).as_posix()
                    assert not relative.startswith("deploy/secrets"), relative
                    assert not any(fnmatch.fnmatch(file.name, p) for p in KEY_PATTERNS), relative


def test_containers_run_as_unprivileged_users() -> None:
    compose = load_compose()["services"]
    for name, service in compose.items():
        if service.get("image", "").split(":")[0] == APP_IMAGE:
            assert "user" not in service, f"{name} keeps the image's non-root USER"
    user, _, group = compose["envoy"]["user"].partition(":")
    assert int(user) != 0 and int(group) != 0
    envoy = pod_spec(next(w for k, w in workloads() if k == "Deployment/envoy"))
    assert int(user) == envoy["securityContext"]["runAsUser"]
    for key, workload in workloads():
        for container in pod_spec(workload)["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, key
            assert context["capabilities"]["drop"] == ["ALL"], key

