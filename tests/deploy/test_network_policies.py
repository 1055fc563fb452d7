"""deploy/k8s NetworkPolicies, checked statically: ingress denied by default, each service's
gRPC port open only to the pods that call it, the metrics ports and Envoy's admin only to
the monitoring namespace's Prometheus, every selector and port real."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.config import split_addr
from tests.deploy.manifests import (
    ADDRESS_OWNERS,
    APP_IMAGE,
    container_env,
    k8s_resources,
    pod_spec,
    workloads,
)

pytestmark = pytest.mark.unit

# The one peer from outside the namespace: the Prometheus pods of `monitoring`.
SCRAPER = "monitoring/prometheus"
SCRAPER_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def policies() -> dict[str, dict[str, Any]]:
    return k8s_resources("NetworkPolicy")


def pod_labels() -> dict[str, dict[str, str]]:
    """Workload name (as its pods are called by app.kubernetes.io/name) -> pod labels."""
    return {
        name.split("/")[1]: workload["spec"]["template"]["metadata"]["labels"]
        for name, workload in workloads()
    }


def selected(selector: dict[str, Any]) -> set[str]:
    assert set(selector) <= {"matchLabels", "matchExpressions"}, selector
    wanted = selector.get("matchLabels", {}).items()
    expressions = selector.get("matchExpressions", [])
    assert all(e["operator"] == "In" for e in expressions), f"only In is used here: {selector}"
    return {
        name for name, labels in pod_labels().items()
        if wanted <= labels.items() and all(labels.get(e["key"]) in e["values"] for e in expressions)
    }


def workload(name: str) -> dict[str, Any]:
    (found,) = [w for key, w in workloads() if key.split("/")[1] == name]
    return found


def declared_ports(name: str) -> dict[str | None, int]:
    return {
        port.get("name"): port["containerPort"]
        for container in pod_spec(workload(name))["containers"]
        for port in container.get("ports", [])
    }


def sources(rule: dict[str, Any]) -> set[str] | None:
    """The pods a rule admits (SCRAPER for the monitoring namespace's Prometheus); None
    means from anywhere."""
    if "from" not in rule:
        return None
    names: set[str] = set()
    for peer in rule["from"]:
        if "namespaceSelector" in peer:
            assert peer == SCRAPER_PEER, f"the only peer from outside is Prometheus: {peer}"
            names.add(SCRAPER)
            continue
        assert set(peer) == {"podSelector"}, f"only pods of this namespace are admitted: {peer}"
        chosen = selected(peer["podSelector"])
        assert chosen, f"{peer} selects no pod"
        names |= chosen
    return names


def port_number(target: str, port: int | str) -> int:
    """A policy's port (a number or a container port's name) on `target` pods."""
    return declared_ports(target)[port] if isinstance(port, str) else port


def admitted(target: str, port: int) -> set[str] | None:
    """Who may reach `port` of `target` pods: a set of workloads, or None for anyone."""
    found: set[str] = set()
    for policy in policies().values():
        if target not in selected(policy["spec"]["podSelector"]):
            continue
        for rule in policy["spec"].get("ingress", []):
            if port not in {port_number(target, p["port"]) for p in rule["ports"]}:
                continue
            names = sources(rule)
            if names is None:
                return None
            found |= names
    return found


def test_ingress_is_denied_unless_a_policy_allows_it() -> None:
    deny = [
        p for p in policies().values()
        if p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"]
    ]
    assert len(deny) == 1 and "ingress" not in deny[0]["spec"]


def test_every_policy_selects_existing_pods_on_their_declared_ports() -> None:
    for name, policy in policies().items():
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress"], name
        targets = selected(spec["podSelector"])
        assert targets, f"NetworkPolicy {name} selects no pod"
        for rule in spec.get("ingress", []):
            sources(rule)
            assert rule["ports"], f"{name}: a rule without ports opens every port"
            for port in rule["ports"]:
                assert port["protocol"] == "TCP", name
                for target in targets:
                    if isinstance(port["port"], str):
                        assert port["port"] in declared_ports(target), (name, target, port)
                    assert port_number(target, port["port"]) in declared_ports(target).values(), (
                        name, target, port
                    )


def dialers(owner: str, port: int) -> set[str]:
    """The workloads whose app containers dial `owner` by its Service name."""
    configmaps = k8s_resources("ConfigMap")
    names = set()
    for key, found in workloads():
        for container in pod_spec(found)["containers"]:
            if container["image"] != APP_IMAGE:
                continue
            env = container_env(container, configmaps)
            if any(env.get(variable) == f"{owner}:{port}" for variable in ADDRESS_OWNERS):
                names.add(key.split("/")[1])
    return names


@pytest.mark.parametrize(("variable", "owner"), ADDRESS_OWNERS.items())
def test_only_the_gateway_and_the_services_callers_reach_its_grpc_port(variable: str, owner: str) -> None:
    (container,) = pod_spec(workload(owner))["containers"]
    _, port = split_addr(container_env(container, k8s_resources("ConfigMap"))[variable])
    allowed = admitted(owner, port)
    assert allowed is not None, f"{owner}:{port} is open to every pod"
    assert allowed == {"envoy"} | dialers(owner, port)
    expected = {"envoy", "worker", "monitor"} | ({"orders"} if owner == "inventory" else set())
    assert allowed == expected


def test_only_the_gateway_port_is_open_to_everyone() -> None:
    (service_port,) = k8s_resources("Service")["envoy"]["spec"]["ports"]
    public = declared_ports("envoy")[service_port["targetPort"]]
    assert admitted("envoy", public) is None
    assert admitted("envoy", declared_ports("envoy")["admin"]) == {SCRAPER}, "admin: for scrapes only"
    for name in pod_labels():
        for port in declared_ports(name).values():
            if (name, port) != ("envoy", public):
                assert admitted(name, port) is not None, f"{name}:{port} is open to every pod"


@pytest.mark.parametrize("part", ["inventory", "orders", "worker", "monitor"])
def test_only_prometheus_reads_each_parts_metrics_port(part: str) -> None:
    (container,) = pod_spec(workload(part))["containers"]
    env = container_env(container, k8s_resources("ConfigMap"))
    (variable,) = [v for v in env if v.endswith("_METRICS_ADDR")]
    _, port = split_addr(env[variable])
    assert declared_ports(part)["metrics"] == port
    assert admitted(part, port) == {SCRAPER}


def test_prometheus_reaches_nothing_but_metrics_and_envoys_admin() -> None:
    for name in pod_labels():
        for port_name, port in declared_ports(name).items():
            allowed = admitted(name, port) or set()
            assert (SCRAPER in allowed) == (port_name in ("metrics", "admin")), (name, port_name)
