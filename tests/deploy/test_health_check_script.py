"""deploy/grpc_health_check.py, the compose health probe, against a real health server."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.deploy.manifests import DEPLOY

pytestmark = pytest.mark.integration

SCRIPT = DEPLOY / "grpc_health_check.py"


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(grace=None)


def probe(addr: str) -> int:
    return subprocess.run(
        [sys.executable, str(SCRIPT), addr], capture_output=True, timeout=30, check=False
    ).returncode


def test_serving_server_is_healthy(health_server: tuple[str, health.HealthServicer]) -> None:
    addr, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert probe(addr) == 0


def test_draining_server_is_unhealthy(health_server: tuple[str, health.HealthServicer]) -> None:
    addr, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert probe(addr) == 1


def test_nothing_listening_is_unhealthy() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert probe(f"127.0.0.1:{port}") == 1
