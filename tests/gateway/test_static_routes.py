"""The routes that serve gateway/static (services/gateway_static.py): one per file and per
directory index, with the file's content type and the pages' security headers, reachable
without a token while the API still needs one; Envoy accepts them."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

import services.gateway as gateway
from services.common.config import Settings
from services.gateway import envoy_command, local_target, render_envoy_config
from services.gateway_static import (
    COMPRESSOR_FILTER,
    MAX_STATIC_FILE_BYTES,
    STATIC_DIR,
    StaticFileTooLarge,
    static_files,
    static_routes_block,
)

pytestmark = pytest.mark.unit

TREE = {
    "openapi.json": b'{"openapi": "3.1.0"}',
    "docs/index.html": b"<!doctype html><title>docs</title>",
    "docs/initializer.js": b"window.x = 1;",
    "docs/swagger-ui/swagger-ui.css": b"body{}",
    "docs/swagger-ui/LICENSE": b"Apache-2.0",
    "console/index.html": b"<!doctype html><title>console</title>",
    "console/views/orders.js": b"export const orders = 1;",
    "console/icon.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "console/a b.mjs": b"export {};",
    "console/data.bin": b"\x00\x01",
    "console/.gitkeep": b"",
    ".hidden/secret.txt": b"no",
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for relative, content in TREE.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return tmp_path


def routes_of(root: Path, served_from: str = "/srv/static") -> list[dict[str, Any]]:
    return yaml.safe_load(static_routes_block(static_files(root), served_from))


def served(routes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {route["match"]["path"]: route for route in routes}


def headers_of(route: dict[str, Any]) -> dict[str, str]:
    added = route["response_headers_to_add"]
    assert all(h["append_action"] == "OVERWRITE_IF_EXISTS_OR_ADD" for h in added)
    return {h["header"]["key"]: h["header"]["value"] for h in added}


def test_every_visible_file_is_served_from_where_envoy_finds_it(tree: Path) -> None:
    routes = served(routes_of(tree))
    files = {
        path: route["direct_response"]["body"]["filename"]
        for path, route in routes.items()
        if route["direct_response"]["status"] == 200
    }
    assert files == {
        "/openapi.json": "/srv/static/openapi.json",
        "/docs": "/srv/static/docs/index.html",
        "/docs/": "/srv/static/docs/index.html",
        "/docs/index.html": "/srv/static/docs/index.html",
        "/docs/initializer.js": "/srv/static/docs/initializer.js",
        "/docs/swagger-ui/swagger-ui.css": "/srv/static/docs/swagger-ui/swagger-ui.css",
        "/docs/swagger-ui/LICENSE": "/srv/static/docs/swagger-ui/LICENSE",
        "/console/": "/srv/static/console/index.html",
        "/console/index.html": "/srv/static/console/index.html",
        "/console/views/orders.js": "/srv/static/console/views/orders.js",
        "/console/icon.svg": "/srv/static/console/icon.svg",
        "/console/a%20b.mjs": "/srv/static/console/a b.mjs",
        "/console/data.bin": "/srv/static/console/data.bin",
    }


def test_content_types_follow_the_extension(tree: Path) -> None:
    types = {path: headers_of(route).get("content-type") for path, route in served(routes_of(tree)).items()}
    assert types["/openapi.json"] == "application/json"
    assert types["/docs"] == types["/console/"] == "text/html; charset=utf-8"
    javascript = "text/javascript; charset=utf-8"
    assert types["/docs/initializer.js"] == types["/console/views/orders.js"] == javascript
    assert types["/console/a%20b.mjs"] == "text/javascript; charset=utf-8"
    assert types["/docs/swagger-ui/swagger-ui.css"] == "text/css; charset=utf-8"
    assert types["/console/icon.svg"] == "image/svg+xml"
    assert types["/docs/swagger-ui/LICENSE"] == "text/plain; charset=utf-8"
    assert types["/console/data.bin"] == "application/octet-stream"


def test_a_directory_without_its_slash_redirects_to_it_except_the_docs(tree: Path) -> None:
    routes = served(routes_of(tree))
    console = routes["/console"]
    assert console["direct_response"] == {"status": 301}
    assert headers_of(console) == {"location": "/console/"}  # relative: right behind any proxy
    assert routes["/docs"]["direct_response"]["status"] == 200


def test_only_get_and_head_are_answered(tree: Path) -> None:
    for route in routes_of(tree):
        (method,) = route["match"]["headers"]
        assert method["name"] == ":method"
        pattern = method["string_match"]["safe_regex"]["regex"]
        assert {m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")
                if re.fullmatch(pattern, m)} == {"GET", "HEAD"}


def test_every_page_carries_nosniff_a_self_only_policy_and_a_cache_policy(tree: Path) -> None:
    for path, route in served(routes_of(tree)).items():
        if route["direct_response"]["status"] != 200:
            continue
        headers = headers_of(route)
        assert headers["x-content-type-options"] == "nosniff", path
        policy = dict(
            (directive.split()[0], directive.split()[1:])
            for directive in headers["content-security-policy"].split("; ")
        )
        assert policy["default-src"] == ["'self'"], path
        assert policy["object-src"] == policy["base-uri"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert "script-src" not in policy, "scripts fall back to default-src 'self'"
        assert "style-src" not in policy, "no inline styles either, Swagger UI included"
        sources = {source for values in policy.values() for source in values}
        assert sources <= {"'self'", "'none'", "data:"}, path
        vendored = path.startswith("/docs/swagger-ui/")
        assert headers["cache-control"] == ("public, max-age=3600" if vendored else "no-cache"), path


def test_files_envoy_could_not_hold_are_refused_when_rendering(tmp_path: Path) -> None:
    (tmp_path / "big.js").write_bytes(b"x" * (MAX_STATIC_FILE_BYTES + 1))
    with pytest.raises(StaticFileTooLarge, match="big.js"):
        static_files(tmp_path)


def test_no_static_directory_means_no_routes(tmp_path: Path) -> None:
    assert static_files(tmp_path / "absent") == []
    assert static_routes_block([], "/srv/static") == ""


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "alg": "ES256"}
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return path


def rendered(jwks_file: Path) -> dict[str, Any]:
    settings = Settings.from_env({"FULFILLMENT_AUTH_JWKS": str(jwks_file)})
    return yaml.safe_load(render_envoy_config(local_target(settings)))


def connection_manager(config: dict[str, Any]) -> dict[str, Any]:
    (listener,) = config["static_resources"]["listeners"]
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def test_the_gateway_serves_this_checkouts_static_files_before_its_catch_all(jwks_file: Path) -> None:
    manager = connection_manager(rendered(jwks_file))
    assert manager["route_config"]["max_direct_response_body_size_bytes"] == MAX_STATIC_FILE_BYTES
    (host,) = manager["route_config"]["virtual_hosts"]
    routes = host["routes"]
    assert routes[-1]["match"] == {"prefix": "/"}, "the 404 catch-all stays last"
    filenames = {
        route["direct_response"]["body"]["filename"]
        for route in routes
        if route.get("direct_response", {}).get("status") == 200
    }
    expected = {str(STATIC_DIR / file.relative) for file in static_files()}
    assert expected and filenames == expected
    assert "/docs" in {route["match"].get("path") for route in routes}


def test_static_paths_pass_the_edge_token_check_and_the_api_does_not(jwks_file: Path) -> None:
    manager = connection_manager(rendered(jwks_file))
    (authn,) = [
        f["typed_config"] for f in manager["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn"
    ]
    protected = [rule["match"]["prefix"] for rule in authn["rules"] if "requires" in rule]
    (host,) = manager["route_config"]["virtual_hosts"]
    static_paths = [
        route["match"]["path"] for route in host["routes"]
        if "path" in route["match"] and route["match"].get("headers")
    ]
    assert "/openapi.json" in static_paths or not (STATIC_DIR / "openapi.json").exists()
    for path in static_paths:
        assert not any(path.startswith(prefix) for prefix in protected), path
    assert any("/v1/products".startswith(prefix) for prefix in protected)
    assert any("/fulfillment.orders.v1.OrderService/GetOrder".startswith(prefix) for prefix in protected)


def test_only_the_static_routes_compress_their_replies(jwks_file: Path) -> None:
    manager = connection_manager(rendered(jwks_file))
    (gzip,) = [f for f in manager["http_filters"] if f["name"] == COMPRESSOR_FILTER]
    assert gzip["disabled"] is True
    (host,) = manager["route_config"]["virtual_hosts"]
    for route in host["routes"]:
        per_route = route.get("typed_per_filter_config", {}).get(COMPRESSOR_FILTER)
        is_static_file = route.get("direct_response", {}).get("body", {}).get("filename")
        assert (per_route is not None) == bool(is_static_file), route["match"]
        if per_route is not None:
            assert per_route["disabled"] is False


def test_direct_responses_below_400_keep_their_body_and_content_type(jwks_file: Path) -> None:
    mappers = connection_manager(rendered(jwks_file))["local_reply_config"]["mappers"]
    passthrough = [
        m for m in mappers
        if m["filter"].get("status_code_filter", {}).get("comparison", {}).get("op") == "LE"
    ]
    (mapper,) = passthrough
    assert mapper["filter"]["status_code_filter"]["comparison"]["value"]["default_value"] == 399
    assert mapper["body_format_override"] == {"text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"}}
    assert mappers.index(mapper) < min(
        i for i, m in enumerate(mappers) if "status_code_filter" in m["filter"] and m is not mapper
    ), "before every error mapper"


def test_envoy_validates_routes_of_any_tree(
    tree: Path, jwks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway, "static_files", lambda: static_files(tree))
    target = local_target(Settings.from_env({"FULFILLMENT_AUTH_JWKS": str(jwks_file)}))
    config = render_envoy_config(replace(target, static_dir=str(tree)))
    assert '"/console/a%20b.mjs"' in config
    path = tree / ".envoy.yaml"
    path.write_text(config)
    result = subprocess.run(
        [*envoy_command(path, base_id=20_000 + uuid.uuid4().int % 40_000), "--mode", "validate"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
