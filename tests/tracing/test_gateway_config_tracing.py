"""The gateway's Envoy config traces exactly when the services do: with an OTLP endpoint
it has the OpenTelemetry tracer (service fulfillment-gateway) and a cluster for the
collector, and Envoy accepts it; without one neither is there."""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml

from services.common.config import ConfigError, Settings
from services.gateway import container_target, local_target, render_envoy_config
from services.gateway_tracing import gateway_tracing, sampling_percent
from tests.gateway.test_gateway_config import connection_manager, validate

pytestmark = pytest.mark.unit


def rendered(monkeypatch: pytest.MonkeyPatch, **otel: str) -> tuple[str, dict[str, Any]]:
    for name in [k for k in os.environ if k.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    for name, value in otel.items():
        monkeypatch.setenv(name, value)
    config = render_envoy_config(local_target(Settings.from_env({"FULFILLMENT_AUTH": "off"})))
    return config, yaml.safe_load(config)


def clusters(config: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_without_an_endpoint_the_gateway_has_no_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    text, config = rendered(monkeypatch)
    assert "tracing" not in connection_manager(config)
    assert set(clusters(config)) == {"inventory", "orders"}
    assert "opentelemetry" not in text
    # Nor does the config for compose and Kubernetes, whatever this shell sets.
    assert "opentelemetry" not in render_envoy_config(container_target("inventory", "orders"))


def test_with_an_endpoint_envoy_traces_to_that_collector(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    text, config = rendered(
        monkeypatch, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4317",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0.25",
    )
    tracing = connection_manager(config)["tracing"]
    provider = tracing["provider"]
    assert provider["name"] == "envoy.tracers.opentelemetry"
    assert provider["typed_config"]["service_name"] == "fulfillment-gateway"
    assert provider["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] == "opentelemetry_collector"
    assert tracing["random_sampling"]["value"] == 25
    collector = clusters(config)["opentelemetry_collector"]
    (endpoint,) = collector["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 4317}
    assert "transport_socket" not in collector
    validate(text, tmp_path)


def test_an_https_collector_is_dialled_with_tls_and_the_exporter_headers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    text, config = rendered(
        monkeypatch, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="https://otlp.example.com",
        OTEL_EXPORTER_OTLP_HEADERS="x-api-key=secret",
    )
    grpc_service = connection_manager(config)["tracing"]["provider"]["typed_config"]["grpc_service"]
    assert grpc_service["initial_metadata"] == [{"key": "x-api-key", "value": "secret"}]
    collector = clusters(config)["opentelemetry_collector"]
    assert collector["type"] == "STRICT_DNS"
    tls = collector["transport_socket"]["typed_config"]
    assert tls["sni"] == "otlp.example.com"
    validate(text, tmp_path)


def test_the_samplers_map_to_envoys_random_sampling() -> None:
    assert sampling_percent({}) == 100
    assert sampling_percent({"OTEL_TRACES_SAMPLER": "always_off"}) == 0
    assert sampling_percent({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}) == 10
    with pytest.raises(ConfigError, match="OTEL_TRACES_SAMPLER"):
        sampling_percent({"OTEL_TRACES_SAMPLER": "jaeger_remote"})
    assert gateway_tracing({"OTEL_TRACES_EXPORTER": "console"}) is None
