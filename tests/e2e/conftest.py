"""The whole stack, started the way a user starts it: `fulfillment up`."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.common.auth.principal import Role
from services.common.config import Settings
from tests.auth import bearer
from tests.auth_helpers import authorization_header
from tests.support import Process, free_port, fulfillment_command, wait_until


@dataclass
class Stack:
    process: Process
    gateway: str
    inventory_addr: str
    orders_addr: str
    admin: str
    # Signs with the key the stack verifies with (FULFILLMENT_AUTH_SIGNING_KEY).
    settings: Settings

    def authorization(self, role: Role = Role.ADMIN, subject: str = "") -> dict[str, str]:
        """The HTTP header a caller with a token of `role` sends."""
        return authorization_header(self.settings, role, subject)

    def bearer(self, role: Role = Role.ADMIN, subject: str = "") -> tuple[tuple[str, str]]:
        """The same token as gRPC call metadata."""
        return bearer(self.settings, role, subject)

    def http(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float = 30,
        role: Role = Role.ADMIN,
        subject: str = "",
    ) -> tuple[int, Any]:
        """One HTTP/JSON call through Envoy as a caller with a token of `role` (an admin
        unless told); returns (status, parsed JSON body or text)."""
        data = (
            body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        )
        request = urllib.request.Request(
            f"{self.gateway}{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json", **self.authorization(role, subject)},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode()
        try:
            return status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return status, text


@contextlib.contextmanager
def up_stack(
    env: dict[str, str], settings: Settings, log: Path, workers: int = 2, timeout_s: float = 90
) -> Iterator[Stack]:
    """`fulfillment up` on free ports with `env` (stores, step delays, metrics ...), ready;
    stopped afterwards whatever happens."""
    ports = {name: free_port() for name in ("inventory", "orders", "gateway", "admin")}
    env = {
        **env,
        "INVENTORY_ADDR": f"127.0.0.1:{ports['inventory']}",
        "ORDERS_ADDR": f"127.0.0.1:{ports['orders']}",
        "GATEWAY_PORT": str(ports["gateway"]),
        "GATEWAY_ADMIN_PORT": str(ports["admin"]),
    }
    process = Process(fulfillment_command("up", "--workers", str(workers)), env, log)
    try:
        wait_until(
            lambda: "up: ready" in process.output() or process.popen.poll() is not None,
            timeout=timeout_s, what="`fulfillment up` to report ready",
        )
        assert "up: ready" in process.output(), process.output()[-3000:]
        yield Stack(
            process, f"http://127.0.0.1:{ports['gateway']}", env["INVENTORY_ADDR"],
            env["ORDERS_ADDR"], f"http://127.0.0.1:{ports['admin']}", settings,
        )
    finally:
        process.stop(timeout=30)


@pytest.fixture(scope="package")
def stack(
    service_env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        **service_env,
        "FULFILLMENT_STEP_DELAY_MIN_S": "0",
        "FULFILLMENT_STEP_DELAY_MAX_S": "0.05",
        "FULFILLMENT_SWEEP_INTERVAL_S": "1",
    }
    with up_stack(env, settings, Path(tmp_path_factory.mktemp("stack")) / "up.log") as running:
        yield running
