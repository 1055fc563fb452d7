"""Loaders shared by the static deployment checks: manifests, the Dockerfile, config names."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "k8s"
CONFIG_MODULE = REPO_ROOT / "services" / "common" / "config.py"
OBSERVABILITY = DEPLOY / "observability"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "fulfillment.json"

# The configuration table of the contract; config.py must read at least these.
CONTRACT_VARIABLES = {
    "DATABASE_URL", "INVENTORY_DATABASE_URL", "ORDERS_DATABASE_URL", "REDIS_URL",
    "INVENTORY_ADDR", "ORDERS_ADDR", "GATEWAY_PORT",
    "FULFILLMENT_STEP_DELAY_MIN_S", "FULFILLMENT_STEP_DELAY_MAX_S", "FULFILLMENT_STALE_AFTER_S",
    "FULFILLMENT_SWEEP_INTERVAL_S", "FULFILLMENT_STALE_RETRIES",
}
# Which service owns (listens on) each address variable: everyone else dials it.
ADDRESS_OWNERS = {"INVENTORY_ADDR": "inventory", "ORDERS_ADDR": "orders"}
APP_IMAGE = "fulfillment"
# Each part serving /metrics, by the variable holding its address (the contract's table).
METRICS_ADDRESSES = {
    "inventory": "INVENTORY_METRICS_ADDR",
    "orders": "ORDERS_METRICS_ADDR",
    "worker": "WORKER_METRICS_ADDR",
    "monitor": "MONITOR_METRICS_ADDR",
}
METRICS_DEFAULT_PORTS = {"inventory": 9101, "orders": 9102, "worker": 9103, "monitor": 9104}
# Standard OTEL_* variables deploy/ sets: read by the tracing switch and the OpenTelemetry
# SDK (services/common/tracing), not by Settings.from_env.
TRACING_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT"}

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?]([^}]*))?\}")


def config_variable_names() -> set[str]:
    """Every environment variable name Settings.from_env reads, from its source."""
    tree = ast.parse(CONFIG_MODULE.read_text())
    from_env = next(
        node for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "from_env"
    )
    return {
        arg.value
        for call in ast.walk(from_env) if isinstance(call, ast.Call)
        for arg in call.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]+", arg.value)
    }


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolated_names(text: str) -> set[str]:
    return {m.group(1) for m in _INTERPOLATION.finditer(text)}


def with_defaults(value: object) -> str:
    """A compose value as it is with nothing set in the shell: ${X:-d} becomes d."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))


@functools.cache
def k8s_documents() -> list[dict[str, Any]]:
    """Every Kubernetes object under deploy/k8s (the kustomization itself is not one).

    Cached: callers must not modify what they get.
    """
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(doc for doc in yaml.load_all(path.read_text(), Loader=_Loader) if doc)
    return docs


def k8s_resources(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


def pod_spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def workloads() -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("Deployment", "Job"):
        for name, doc in k8s_resources(kind).items():
            yield f"{kind}/{name}", doc


def container_env(container: Mapping[str, Any], configmaps: Mapping[str, Any]) -> dict[str, str]:
    """The container's plain environment: envFrom ConfigMaps, then env values (secrets as "")."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        env[item["name"]] = str(item.get("value", ""))
    return env


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_stages() -> list[list[Instruction]]:
    """Instructions grouped by stage (continuations joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages
