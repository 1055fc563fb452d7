"""The Envoy config `fulfillment gateway` renders from the settings: where it listens, the
edge token check, TLS to the services; every variant passes `envoy --mode validate`."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from services.common.auth.verify import LEEWAY_S
from services.common.config import Settings, gateway_url
from services.devtools.local_ca import LocalCa, write_local_ca
from services.gateway import envoy_command, local_target, render_envoy_config
from services.gateway_security import CLOCK_SKEW_S

pytestmark = pytest.mark.unit

PUBLIC_PREFIXES = {
    "/v1/",
    "/fulfillment.orders.v1.OrderService/",
    "/fulfillment.inventory.v1.InventoryService/",
}


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "alg": "ES256"}
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return path


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    return write_local_ca(tmp_path_factory.mktemp("ca"))


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def rendered(settings: Settings) -> dict[str, Any]:
    return yaml.safe_load(render_envoy_config(local_target(settings)))


def connection_manager(config: dict[str, Any]) -> dict[str, Any]:
    (listener,) = config["static_resources"]["listeners"]
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def filter_names(config: dict[str, Any]) -> list[str]:
    return [f["name"] for f in connection_manager(config)["http_filters"]]


def jwt_authn(config: dict[str, Any]) -> dict[str, Any]:
    (found,) = [
        f["typed_config"] for f in connection_manager(config)["http_filters"]
        if f["name"] == "envoy.filters.http.jwt_authn"
    ]
    return found


def test_the_gateway_listens_on_gateway_host_and_the_admin_on_loopback(jwks_file: Path) -> None:
    for host in ("127.0.0.1", "0.0.0.0", "::1"):
        config = rendered(settings(GATEWAY_HOST=host, FULFILLMENT_AUTH_JWKS=str(jwks_file)))
        (listener,) = config["static_resources"]["listeners"]
        assert listener["address"]["socket_address"]["address"] == host
        assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    default = rendered(settings(FULFILLMENT_AUTH_JWKS=str(jwks_file)))
    assert default["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_tokens_are_verified_at_the_edge_with_the_services_rules(jwks_file: Path) -> None:
    config = rendered(settings(
        FULFILLMENT_AUTH_JWKS=str(jwks_file),
        FULFILLMENT_AUTH_ISSUER="https://idp.example/realms/shop",
        FULFILLMENT_AUTH_AUDIENCE="orders-api",
    ))
    authn = jwt_authn(config)
    (provider,) = authn["providers"].values()
    assert provider["issuer"] == "https://idp.example/realms/shop"
    assert provider["audiences"] == ["orders-api"]
    assert provider["local_jwks"] == {"filename": str(jwks_file.resolve())}
    # The header only (never a query parameter), passed on for the services to check again.
    assert provider["from_headers"] == [{"name": "Authorization", "value_prefix": "Bearer "}]
    assert "from_params" not in provider and "from_cookies" not in provider
    assert provider["forward"] is True and provider["require_expiration"] is True
    assert provider["clock_skew_seconds"] == CLOCK_SKEW_S
    required = {rule["match"]["prefix"] for rule in authn["rules"] if "requires" in rule}
    assert required == PUBLIC_PREFIXES
    assert all(set(rule["match"]) == {"prefix"} for rule in authn["rules"])


def test_the_edge_check_runs_before_anything_reads_the_body_or_calls_a_service(jwks_file: Path) -> None:
    names = filter_names(rendered(settings(FULFILLMENT_AUTH_JWKS=str(jwks_file))))
    jwt = names.index("envoy.filters.http.jwt_authn")
    assert jwt < names.index("unary_body_limit") < names.index("envoy.filters.http.grpc_json_transcoder")
    assert names[-1] == "envoy.filters.http.router"


def test_open_paths_need_no_token(jwks_file: Path) -> None:
    """Reflection and health (and the API description and console to come) are not under
    any prefix that requires a token."""
    required = {
        rule["match"]["prefix"]
        for rule in jwt_authn(rendered(settings(FULFILLMENT_AUTH_JWKS=str(jwks_file))))["rules"]
        if "requires" in rule
    }
    for path in (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.health.v1.Health/Check",
        "/openapi.json", "/docs", "/console/",
    ):
        assert not any(path.startswith(prefix) for prefix in required), path


@pytest.mark.parametrize(
    "env",
    [{"FULFILLMENT_AUTH": "off"}, {"FULFILLMENT_AUTH_JWKS": "https://idp.example/certs"}],
    ids=["auth off", "remote key set"],
)
def test_no_edge_check_without_a_local_key_set(env: dict[str, str]) -> None:
    names = filter_names(rendered(settings(**env)))
    assert "envoy.filters.http.jwt_authn" not in names
    assert "envoy.filters.http.grpc_json_transcoder" in names


def test_the_local_key_set_is_written_for_the_gateway(tmp_path: Path) -> None:
    key = tmp_path / "state" / "signing-key.pem"
    authn = jwt_authn(rendered(settings(FULFILLMENT_AUTH_SIGNING_KEY=str(key))))
    (provider,) = authn["providers"].values()
    jwks = Path(provider["local_jwks"]["filename"])
    assert jwks == (key.parent / "jwks.json").resolve()
    (jwk,) = json.loads(jwks.read_text())["keys"]
    assert jwk["kty"] == "EC" and "d" not in jwk, "the public half only"


def test_a_named_key_set_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="FULFILLMENT_AUTH_JWKS"):
        local_target(settings(FULFILLMENT_AUTH_JWKS=str(tmp_path / "missing.json")))


def clusters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_plaintext_to_the_services_by_default(jwks_file: Path) -> None:
    for cluster in clusters(rendered(settings(FULFILLMENT_AUTH_JWKS=str(jwks_file)))).values():
        assert "transport_socket" not in cluster


def test_mutual_tls_to_the_services_with_the_shared_certificate(ca: LocalCa, jwks_file: Path) -> None:
    config = rendered(settings(
        FULFILLMENT_AUTH_JWKS=str(jwks_file),
        FULFILLMENT_TLS_CERT=str(ca.server_cert),
        FULFILLMENT_TLS_KEY=str(ca.server_key),
        FULFILLMENT_TLS_CA=str(ca.ca),
    ))
    for cluster in clusters(config).values():
        context = cluster["transport_socket"]["typed_config"]
        assert context["@type"].endswith("UpstreamTlsContext")
        common = context["common_tls_context"]
        assert common["alpn_protocols"] == ["h2"]
        (certificate,) = common["tls_certificates"]
        assert certificate["certificate_chain"]["filename"] == str(ca.server_cert.resolve())
        assert certificate["private_key"]["filename"] == str(ca.server_key.resolve())
        validation = common["validation_context"]
        assert validation["trusted_ca"]["filename"] == str(ca.ca.resolve())
        # Local clusters dial 127.0.0.1: the certificate must carry that address.
        assert validation["match_typed_subject_alt_names"] == [
            {"san_type": "IP_ADDRESS", "matcher": {"exact": "127.0.0.1"}}
        ]
        assert "sni" not in context


def test_tls_without_a_ca_verifies_against_the_roots_grpc_clients_use(
    ca: LocalCa, jwks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", str(ca.ca))
    config = rendered(settings(
        FULFILLMENT_AUTH_JWKS=str(jwks_file),
        FULFILLMENT_TLS_CERT=str(ca.server_cert),
        FULFILLMENT_TLS_KEY=str(ca.server_key),
        INVENTORY_ADDR="localhost:50051",
    ))
    inventory = clusters(config)["inventory"]["transport_socket"]["typed_config"]
    assert "tls_certificates" not in inventory["common_tls_context"]
    validation = inventory["common_tls_context"]["validation_context"]
    assert validation["trusted_ca"]["filename"] == str(ca.ca)
    assert validation["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "localhost"}}
    ]
    assert inventory["sni"] == "localhost"


def validate(config: str, tmp_path: Path) -> None:
    path = tmp_path / f"envoy-{uuid.uuid4().hex}.yaml"
    path.write_text(config)
    result = subprocess.run(
        [*envoy_command(path, base_id=20_000 + uuid.uuid4().int % 40_000), "--mode", "validate"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mutual", [True, False], ids=["mutual TLS", "TLS"])
def test_envoy_validates_the_config_with_the_edge_check_and_tls_upstreams(
    ca: LocalCa, jwks_file: Path, tmp_path: Path, mutual: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", str(ca.ca))
    env = {
        "FULFILLMENT_AUTH_JWKS": str(jwks_file),
        "FULFILLMENT_TLS_CERT": str(ca.server_cert),
        "FULFILLMENT_TLS_KEY": str(ca.server_key),
        "ORDERS_ADDR": "localhost:50052",
        **({"FULFILLMENT_TLS_CA": str(ca.ca)} if mutual else {}),
    }
    target = local_target(settings(**env))
    assert target.edge_auth is not None and target.upstream_tls is not None
    validate(render_envoy_config(target), tmp_path)
    # A key set Envoy cannot use is refused when the config is loaded, not at the first call.
    empty = jwks_file.parent / "empty-jwks.json"
    empty.write_text('{"keys": []}')
    broken = replace(target, edge_auth=replace(target.edge_auth, jwks_path=str(empty)))
    with pytest.raises(AssertionError, match="jwks"):
        validate(render_envoy_config(broken), tmp_path)


def test_callers_on_this_machine_reach_the_gateway_where_it_listens() -> None:
    assert gateway_url(settings(GATEWAY_PORT="8081")) == "http://127.0.0.1:8081"
    assert gateway_url(settings(GATEWAY_HOST="0.0.0.0")) == "http://127.0.0.1:8080"
    assert gateway_url(settings(GATEWAY_HOST="10.1.2.3")) == "http://10.1.2.3:8080"
    assert gateway_url(settings(GATEWAY_HOST="::1")) == "http://[::1]:8080"


def test_the_edge_allows_the_same_clock_skew_as_the_services() -> None:
    assert CLOCK_SKEW_S == LEEWAY_S
