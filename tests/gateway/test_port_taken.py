"""A second gateway on a port one already holds fails to start, loudly, instead of
starting beside it and taking a share of its connections (Envoy binds with SO_REUSEPORT
unless told not to)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Process, free_port, fulfillment_command, wait_until

pytestmark = pytest.mark.e2e


def test_a_second_gateway_on_a_held_port_exits_with_the_reason(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    first_admin, second_admin = free_port(), free_port()
    first = Process(
        fulfillment_command("gateway"),
        {**service_env, "GATEWAY_PORT": str(port), "GATEWAY_ADMIN_PORT": str(first_admin)},
        tmp_path / "first.log",
    )
    try:
        wait_until(
            lambda: f"127.0.0.1:{port}" in _listening(), timeout=30, interval=0.2,
            what="the first gateway to listen",
        )
        second = Process(
            fulfillment_command("gateway"),
            {**service_env, "GATEWAY_PORT": str(port), "GATEWAY_ADMIN_PORT": str(second_admin)},
            tmp_path / "second.log",
        )
        try:
            code = second.wait(timeout=30)
            assert code != 0, second.output()
            assert f"cannot bind '127.0.0.1:{port}': Address already in use" in second.output()
        finally:
            second.stop()
        assert first.popen.poll() is None, first.output()
    finally:
        first.stop()


def _listening() -> str:
    """The TCP sockets listening on this machine, as ip:port (from /proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] != "0A":  # LISTEN
            continue
        address, port = fields[1].split(":")
        octets = [str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)]
        found.append(f"{'.'.join(octets)}:{int(port, 16)}")
    return " ".join(found)
