"""What the gateway adds for identity and transport security, as blocks of Envoy config.

- The edge token check (gateway/jwt_authn.yaml.tmpl): Envoy verifies the bearer token
  when the key set is a file, with the services' issuer, audience and leeway, and passes
  the header on. The services remain the authority: they verify every call again.
- TLS to the services (gateway/upstream_tls.yaml.tmpl) when they listen with it.

Each block is inserted at a line of gateway/envoy.yaml.tmpl that holds only its
placeholder, indented to that line's column; an empty block removes the line.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template

from services.common.config import ConfigError, Settings

GATEWAY_DIR = Path(__file__).resolve().parents[1] / "gateway"
JWT_AUTHN_TEMPLATE = GATEWAY_DIR / "jwt_authn.yaml.tmpl"
UPSTREAM_TLS_TEMPLATE = GATEWAY_DIR / "upstream_tls.yaml.tmpl"
# The services' leeway for exp and nbf (services.common.auth.verify), so that the edge
# never refuses a token they would accept.
CLOCK_SKEW_S = 30


@dataclass(frozen=True)
class EdgeAuth:
    """What Envoy's jwt_authn checks: the services' issuer, audience and key set file."""

    jwks_path: str
    issuer: str
    audience: str


@dataclass(frozen=True)
class UpstreamTls:
    """Envoy's side of TLS to the services: what it trusts, and its certificate for mTLS."""

    trusted_ca: str
    client_cert: str | None = None
    client_key: str | None = None


def verifies_at_the_edge(settings: Settings) -> bool:
    """Auth on and the key set a file. A JWKS URL is left to the services, which fetch,
    cache and refresh it (README: Transport security and the gateway)."""
    return settings.auth_enabled and "://" not in settings.auth_jwks


def local_edge_auth(settings: Settings) -> EdgeAuth | None:
    """The key set file on this machine: FULFILLMENT_AUTH_JWKS, or the local key set's
    jwks.json, written now (with the key, on first use) so that Envoy can read it."""
    if not verifies_at_the_edge(settings):
        return None
    if settings.auth_jwks:
        path = Path(settings.auth_jwks).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"FULFILLMENT_AUTH_JWKS names {path}, which is not a file")
    else:
        from services.common.auth.keys import write_public_jwks

        path = write_public_jwks(settings)
    return EdgeAuth(str(path.resolve()), settings.auth_issuer, settings.auth_audience)


def upstream_tls(settings: Settings) -> UpstreamTls | None:
    """TLS to the services when they listen with it (FULFILLMENT_TLS_CERT/_KEY): verified
    against FULFILLMENT_TLS_CA, with Envoy presenting the same certificate as every other
    client (mutual TLS); without a CA, against the roots gRPC clients use."""
    if not settings.tls_cert:
        return None
    if settings.tls_ca:
        return UpstreamTls(
            str(Path(settings.tls_ca).resolve()),
            str(Path(settings.tls_cert).resolve()),
            str(Path(settings.tls_key).resolve()),
        )
    roots = os.environ.get("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH") or ssl.get_default_verify_paths().cafile
    if not roots:
        raise ConfigError(
            "TLS without FULFILLMENT_TLS_CA: Envoy verifies the services against the system's CA "
            "bundle, and none was found; set FULFILLMENT_TLS_CA or GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"
        )
    return UpstreamTls(roots)


def jwt_authn_block(auth: EdgeAuth | None) -> str:
    if auth is None:
        return ""
    return _block(JWT_AUTHN_TEMPLATE, {
        "issuer": yaml_string(auth.issuer),
        "audience": yaml_string(auth.audience),
        "jwks_path": yaml_string(auth.jwks_path),
        "clock_skew_s": str(CLOCK_SKEW_S),
    })


def upstream_tls_block(tls: UpstreamTls | None, host: str) -> str:
    if tls is None:
        return ""
    address = is_ip(host)
    client_certificate = ""
    if tls.client_cert and tls.client_key:
        client_certificate = (
            f"tls_certificates: [{{ certificate_chain: {{ filename: {yaml_string(tls.client_cert)} }}, "
            f"private_key: {{ filename: {yaml_string(tls.client_key)} }} }}]"
        )
    return _block(UPSTREAM_TLS_TEMPLATE, {
        "sni": "" if address else f"sni: {yaml_string(host)}",  # SNI carries names, never addresses
        "client_certificate": client_certificate,
        "trusted_ca": yaml_string(tls.trusted_ca),
        "san_type": "IP_ADDRESS" if address else "DNS",
        "host": yaml_string(host),
    })


def insert_blocks(config: str, blocks: Mapping[str, str]) -> str:
    """Each line holding only ${name} takes blocks[name], indented to that line's column;
    an empty block removes the line."""
    out = []
    for line in config.splitlines(keepends=True):
        stripped = line.strip()
        name = stripped[2:-1] if stripped.startswith("${") and stripped.endswith("}") else ""
        if name not in blocks:
            out.append(line)
        elif blocks[name]:
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(f"{indent}{block_line}\n" for block_line in blocks[name].splitlines())
    return "".join(out)


def _block(template: Path, values: Mapping[str, str]) -> str:
    """A block template filled in, without its header comment or empty lines."""
    lines = Template(template.read_text()).substitute(values).splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "\n".join(line for line in lines if line.strip())


def yaml_string(value: str) -> str:
    """A YAML scalar that stays one string whatever it holds (JSON is YAML)."""
    return json.dumps(value)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
