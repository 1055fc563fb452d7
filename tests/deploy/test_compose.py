"""deploy/docker-compose.yml, checked statically: there is no Docker engine here."""

from __future__ import annotations

import re
from typing import Any

import pytest

from services.common.config import ConfigError, Settings, split_addr
from services.gateway import container_target
from tests.deploy.manifests import (
    ADDRESS_OWNERS,
    APP_IMAGE,
    COMPOSE_FILE,
    CONTRACT_VARIABLES,
    DEPLOY,
    DOCKERFILE,
    REPO_ROOT,
    TRACING_VARIABLES,
    config_variable_names,
    interpolated_names,
    load_compose,
    with_defaults,
)

pytestmark = pytest.mark.unit

ROLES = {
    "migrate": ["migrate"],
    "inventory": ["serve", "inventory"],
    "orders": ["serve", "orders"],
    "worker": ["worker"],
    "monitor": ["monitor"],
}
# Variables the compose file may read from the shell besides the configuration table.
COMPOSE_ONLY_VARIABLES = {
    "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD",
    "PROMETHEUS_PORT", "GRAFANA_PORT", "JAEGER_UI_PORT", "JAEGER_OTLP_PORT",
}
OBSERVERS = {"prometheus", "grafana", "jaeger"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if s.get("image", "").split(":")[0] == APP_IMAGE}


def resolved_env(service: dict[str, Any]) -> dict[str, str]:
    return {k: with_defaults(v) for k, v in (service.get("environment") or {}).items()}


def test_config_variable_names_are_derived_from_settings() -> None:
    assert config_variable_names() >= CONTRACT_VARIABLES


def test_every_part_of_the_stack_is_a_service(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {*ROLES, "postgres", "redis", "envoy", *OBSERVERS}
    assert set(app_services(services)) == set(ROLES)


def test_one_image_for_every_role_built_from_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name, service in app_services(services).items():
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() \
            == DOCKERFILE, name
        command = service["command"]
        assert command[: len(ROLES[name])] == ROLES[name], name


def test_app_environment_uses_only_real_config_variables(services: dict[str, dict[str, Any]]) -> None:
    known = config_variable_names() | TRACING_VARIABLES
    for name, service in app_services(services).items():
        unknown = set(service.get("environment") or {}) - known
        assert not unknown, f"{name} sets variables Settings.from_env never reads: {unknown}"


def test_shell_variables_are_config_variables_or_postgres_password() -> None:
    names = interpolated_names(COMPOSE_FILE.read_text())
    assert names - config_variable_names() <= COMPOSE_ONLY_VARIABLES


def test_every_role_parses_its_configuration(services: dict[str, dict[str, Any]]) -> None:
    for name, service in app_services(services).items():
        try:
            Settings.from_env(resolved_env(service))
        except ConfigError as exc:
            pytest.fail(f"{name}: {exc}")


def test_servers_listen_on_all_interfaces_at_the_default_ports(
    services: dict[str, dict[str, Any]],
) -> None:
    defaults = Settings()
    for variable, owner in ADDRESS_OWNERS.items():
        host, port = split_addr(resolved_env(services[owner])[variable])
        assert host == "0.0.0.0", owner
        assert port == split_addr(getattr(defaults, variable.lower()))[1], owner


def test_clients_dial_servers_by_service_name(services: dict[str, dict[str, Any]]) -> None:
    for name, service in app_services(services).items():
        for variable, owner in ADDRESS_OWNERS.items():
            if name == owner or variable not in resolved_env(service):
                continue
            owner_port = split_addr(resolved_env(services[owner])[variable])[1]
            assert resolved_env(service)[variable] == f"{owner}:{owner_port}", (name, variable)


def test_clients_of_the_servers_have_their_addresses(services: dict[str, dict[str, Any]]) -> None:
    needs = {
        "orders": {"INVENTORY_ADDR"},
        "worker": {"INVENTORY_ADDR", "ORDERS_ADDR"},
        "monitor": {"ORDERS_ADDR"},
    }
    for name, variables in needs.items():
        assert variables <= set(resolved_env(services[name])), name


def test_worker_and_monitor_have_no_database_access(services: dict[str, dict[str, Any]]) -> None:
    for name in ("worker", "monitor"):
        assert not {v for v in resolved_env(services[name]) if v.endswith("DATABASE_URL")}, name


def test_stores_are_reached_by_service_name(services: dict[str, dict[str, Any]]) -> None:
    for name, service in app_services(services).items():
        env = resolved_env(service)
        if "DATABASE_URL" in env:
            assert re.match(r"postgresql://[^@]+@postgres:5432/\w+$", env["DATABASE_URL"]), name
        if "REDIS_URL" in env:
            assert env["REDIS_URL"].startswith("redis://redis:6379/"), name


def test_depends_on_waits_for_health_or_completion(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}, which has none"
            else:
                assert condition == "service_completed_successfully", (name, target)
                assert services[target]["restart"] == "no", target


def test_servers_start_after_migration_and_their_stores(services: dict[str, dict[str, Any]]) -> None:
    for name in ("inventory", "orders"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_stores_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    assert services["postgres"]["image"] == "postgres:16"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_grpc_servers_probe_their_own_health_port(services: dict[str, dict[str, Any]]) -> None:
    for variable, owner in ADDRESS_OWNERS.items():
        test = services[owner]["healthcheck"]["test"]
        port = split_addr(resolved_env(services[owner])[variable])[1]
        assert test[:3] == ["CMD", "python", "/app/grpc_health_check.py"], owner
        assert test[3] == f"127.0.0.1:{port}", owner
    assert "COPY deploy/grpc_health_check.py /app/grpc_health_check.py" in DOCKERFILE.read_text()


def test_worker_runs_several_replicas(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker


def test_gateway_ports_match_the_configuration_defaults(services: dict[str, dict[str, Any]]) -> None:
    defaults, target = Settings(), container_target("inventory", "orders")
    published = {}
    for mapping in services["envoy"]["ports"]:
        *host, container = with_defaults(mapping).split(":")
        published[int(container)] = host
    assert published[target.listen_port] == [str(defaults.gateway_port)]
    assert published[target.admin_port] == ["127.0.0.1", str(defaults.gateway_admin_port)]
    assert (target.listen_port, target.admin_port) == (defaults.gateway_port, defaults.gateway_admin_port)
    assert set(published) == {target.listen_port, target.admin_port}


def test_stores_publish_no_ports(services: dict[str, dict[str, Any]]) -> None:
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]


def test_envoy_mounts_the_rendered_config_and_descriptor(services: dict[str, dict[str, Any]]) -> None:
    envoy = services["envoy"]
    mounts = {}
    for volume in envoy["volumes"]:
        source, target, *_ = volume.split(":")
        assert (DEPLOY / source).exists(), source
        mounts[target] = (DEPLOY / source).resolve()
    config_path = envoy["command"][envoy["command"].index("-c") + 1]
    assert mounts[config_path] == DEPLOY / "envoy" / "envoy.compose.yaml"
    assert mounts[container_target("inventory", "orders").descriptor_path] == \
        REPO_ROOT / "gateway" / "fulfillment.pb"


def test_no_secret_is_written_into_the_file(compose: dict[str, Any]) -> None:
    def strings(node: object, key: str = "") -> list[tuple[str, str]]:
        if isinstance(node, dict):
            return [s for k, v in node.items() for s in strings(v, str(k))]
        if isinstance(node, list):
            return [s for v in node for s in strings(v, key)]
        return [(key, str(node))]

    for key, value in strings(compose):
        if re.search(r"PASSWORD|SECRET|TOKEN", key):
            assert re.fullmatch(r"\$\{[A-Z_]+(:-[^}]*)?\}", value), f"{key} is a literal: {value}"
        for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
            assert re.fullmatch(r"\$\{[A-Z_]+(:-[^}]*)?\}", password), f"literal password in {value}"


def test_worker_health_check_reads_the_file_the_worker_touches(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    command = worker["command"]
    liveness_file = command[command.index("--liveness-file") + 1]
    assert worker["healthcheck"]["test"][1:] == [
        "python", "-m", "services.lifecycle_worker.liveness", liveness_file
    ]
