"""deploy/k8s, checked statically: manifests parse and refer to each other consistently."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from services.common.config import ConfigError, Settings, split_addr
from services.gateway import container_target
from tests.deploy.manifests import (
    ADDRESS_OWNERS,
    APP_IMAGE,
    CONTRACT_VARIABLES,
    DOCKERFILE,
    K8S,
    config_variable_names,
    container_env,
    k8s_documents,
    k8s_resources,
    pod_spec,
    workloads,
)

pytestmark = pytest.mark.unit

ROLES = {
    "inventory": ["serve", "inventory"],
    "orders": ["serve", "orders"],
    "worker": ["worker"],
    "monitor": ["monitor"],
}
STORES_SECRET = "fulfillment-stores"


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_spec(workload)["containers"]


def app_containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, c) for name, w in workloads() for c in containers(w)
        if c["image"].split(":")[0] == APP_IMAGE
    ]


def declared_port(container: dict[str, Any], port: int | str) -> int:
    """A probe or Service port (number or name) resolved to the container's port number."""
    declared = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if isinstance(port, str):
        assert port in declared, f"port name {port!r} is not declared on {container['name']}"
        return declared[port]
    assert port in declared.values(), f"port {port} is not declared on {container['name']}"
    return port


def plain_env(container: dict[str, Any]) -> dict[str, str]:
    return container_env(container, k8s_resources("ConfigMap"))


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert [i["name"] for i in kustomization["images"]] == [APP_IMAGE]


def test_every_document_has_kind_and_name() -> None:
    for doc in k8s_documents():
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], doc


def test_each_role_has_a_deployment_running_its_command() -> None:
    deployments = k8s_resources("Deployment")
    assert set(deployments) == {*ROLES, "envoy"}
    for name, args in ROLES.items():
        (container,) = containers(deployments[name])
        assert container["image"] == APP_IMAGE
        assert container["args"][: len(args)] == args, name


def test_migrate_job_runs_migrate() -> None:
    (job,) = k8s_resources("Job").values()
    (container,) = containers(job)
    assert container["image"] == APP_IMAGE
    assert container["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] in ("OnFailure", "Never")


def test_grpc_servers_have_native_grpc_probes_on_their_port() -> None:
    deployments = k8s_resources("Deployment")
    for variable, owner in ADDRESS_OWNERS.items():
        (container,) = containers(deployments[owner])
        host, port = split_addr(plain_env(container)[variable])
        assert host == "0.0.0.0", owner
        assert port == split_addr(getattr(Settings(), variable.lower()))[1], owner
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == port, (owner, probe)


def test_probes_point_at_declared_container_ports() -> None:
    for _name, workload in workloads():
        for container in containers(workload):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe not in container or "exec" in container[probe]:
                    continue
                check = container[probe]
                port = check["grpc"]["port"] if "grpc" in check else check["httpGet"]["port"]
                declared_port(container, port)


def test_services_select_existing_pods_and_ports() -> None:
    deployments = k8s_resources("Deployment")
    services = k8s_resources("Service")
    assert set(services) == {"inventory", "orders", "envoy"}
    for name, service in services.items():
        selector = service["spec"]["selector"]
        matches = [
            d for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, f"Service {name} selects {len(matches)} Deployments"
        (container,) = containers(matches[0])
        for port in service["spec"]["ports"]:
            assert declared_port(container, port["targetPort"]) == port["port"], name


def test_deployment_selectors_match_their_pod_labels() -> None:
    for name, deployment in k8s_resources("Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name


def test_clients_dial_servers_by_service_name() -> None:
    services = k8s_resources("Service")
    for name, container in app_containers():
        env = plain_env(container)
        for variable, owner in ADDRESS_OWNERS.items():
            if variable not in env or env[variable].startswith("0.0.0.0:"):
                continue
            assert env[variable] == f"{owner}:{services[owner]['spec']['ports'][0]['port']}", name


def test_app_environment_uses_only_real_config_variables() -> None:
    known = config_variable_names()
    assert known >= CONTRACT_VARIABLES
    assert set(k8s_resources("ConfigMap")["fulfillment-config"]["data"]) <= known
    for name, container in app_containers():
        unknown = {item["name"] for item in container.get("env", [])} - known
        assert not unknown, f"{name} sets variables Settings.from_env never reads: {unknown}"
        try:
            Settings.from_env(plain_env(container))
        except ConfigError as exc:
            pytest.fail(f"{name}: {exc}")


def test_credentials_come_from_a_secret_that_is_not_committed() -> None:
    assert not [d for d in k8s_documents() if d["kind"] == "Secret"]
    referenced = set()
    for name, container in app_containers():
        for item in container.get("env", []):
            if item["name"].endswith("_URL"):
                ref = item["valueFrom"]["secretKeyRef"]
                assert ref["name"] == STORES_SECRET, name
                assert ref["key"] == item["name"], name
                referenced.add(ref["key"])
    assert referenced == {"DATABASE_URL", "REDIS_URL"}
    assert "://" not in (K8S / "config.yaml").read_text()


def test_worker_and_monitor_have_no_database_access() -> None:
    deployments = k8s_resources("Deployment")
    for name in ("worker", "monitor"):
        (container,) = containers(deployments[name])
        assert not {i["name"] for i in container.get("env", []) if "DATABASE" in i["name"]}, name


def test_hpa_scales_the_worker_deployment() -> None:
    (hpa,) = k8s_resources("HorizontalPodAutoscaler").values()
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "worker")
    assert "worker" in k8s_resources("Deployment")
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    # The HPA owns the count; a fixed one would be reset on every apply.
    assert "replicas" not in k8s_resources("Deployment")["worker"]["spec"]
    (worker,) = containers(k8s_resources("Deployment")["worker"])
    assert "cpu" in worker["resources"]["requests"], "CPU utilisation needs a CPU request"


def test_every_container_has_requests_and_limits() -> None:
    for name, workload in workloads():
        for container in containers(workload):
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)


def test_pods_run_as_the_images_non_root_user() -> None:
    user = re.search(r"^USER (\d+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert user is not None
    for name, workload in workloads():
        context = pod_spec(workload)["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] != 0, name
        if containers(workload)[0]["image"] == APP_IMAGE:
            assert context["runAsUser"] == int(user.group(1)), name


def test_envoy_mounts_config_and_descriptor_from_the_configmap() -> None:
    envoy = k8s_resources("Deployment")["envoy"]
    (container,) = containers(envoy)
    target = container_target("inventory", "orders")
    (volume,) = [v for v in pod_spec(envoy)["volumes"] if "configMap" in v]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    configmap = k8s_resources("ConfigMap")[volume["configMap"]["name"]]
    files = {f"{mount['mountPath']}/{key}" for key in {**configmap["data"], **configmap["binaryData"]}}
    config_path = container["command"][container["command"].index("-c") + 1]
    assert {config_path, target.descriptor_path} <= files
    assert declared_port(container, target.listen_port) == target.listen_port
    assert declared_port(container, target.admin_port) == target.admin_port
    (service_port,) = k8s_resources("Service")["envoy"]["spec"]["ports"]
    assert service_port["port"] == Settings().gateway_port


def test_kustomize_builds_the_manifests() -> None:
    assert shutil.which("kubectl"), "kubectl (it builds kustomizations offline) is not installed"
    # `kubectl kustomize` works offline; nothing here talks to a cluster.
    built = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=30, check=False
    )
    assert built.returncode == 0, built.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(built.stdout))
    assert kinds == sorted(d["kind"] for d in k8s_documents())


def test_worker_liveness_probe_reads_the_file_the_worker_touches() -> None:
    (container,) = containers(k8s_resources("Deployment")["worker"])
    args = container["args"]
    liveness_file = args[args.index("--liveness-file") + 1]
    command = container["livenessProbe"]["exec"]["command"]
    assert command[:3] == ["python", "-m", "services.lifecycle_worker.liveness"]
    assert command[3] == liveness_file
    assert liveness_file.startswith("/tmp/"), "the root filesystem is read-only; /tmp is a volume"
