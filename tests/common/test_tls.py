"""TLS and mutual TLS on a real grpc.aio server started by start_server, with a local CA
made by `fulfillment tls-dev`'s module; clients built by services.common.tls and
services.common.channels, as the services build theirs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.channels import aio_channel, lifecycle_channel, sync_channel
from services.common.config import Settings
from services.common.server import ServerSecurity, ServiceParts
from services.common.tls import channel_credentials, server_credentials
from services.devtools.local_ca import LocalCa, write_local_ca
from tests.support import BackgroundServer

pytestmark = pytest.mark.integration

SERVING = health_pb2.HealthCheckResponse.SERVING


async def _health_only() -> ServiceParts:
    """A server with what start_server always adds (health, reflection) and nothing else."""
    return ServiceParts(register=lambda _server: [])


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    return write_local_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    return write_local_ca(tmp_path_factory.mktemp("other-ca"))


def tls_settings(ca: LocalCa, mutual: bool) -> Settings:
    """What every role of the stack reads from FULFILLMENT_TLS_*."""
    return Settings.from_env({
        "FULFILLMENT_TLS_CERT": str(ca.server_cert),
        "FULFILLMENT_TLS_KEY": str(ca.server_key),
        **({"FULFILLMENT_TLS_CA": str(ca.ca)} if mutual else {}),
    })


@pytest.fixture(scope="module")
def tls_server(ca: LocalCa) -> Iterator[BackgroundServer]:
    security = ServerSecurity(credentials=server_credentials(tls_settings(ca, mutual=False)))
    with BackgroundServer(_health_only, security) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(ca: LocalCa) -> Iterator[BackgroundServer]:
    security = ServerSecurity(credentials=server_credentials(tls_settings(ca, mutual=True)))
    with BackgroundServer(_health_only, security) as server:
        yield server


def check(channel: grpc.Channel) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def refused(channel: grpc.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        check(channel)
    return info.value.code()


def test_a_tls_server_answers_a_client_that_trusts_its_ca(tls_server: BackgroundServer, ca: LocalCa) -> None:
    trusting = grpc.ssl_channel_credentials(root_certificates=ca.ca.read_bytes())
    with sync_channel(tls_server.addr, trusting) as channel:
        assert check(channel) == SERVING


def test_a_tls_server_refuses_plaintext_and_clients_that_do_not_trust_it(
    tls_server: BackgroundServer, other_ca: LocalCa
) -> None:
    with sync_channel(tls_server.addr) as channel:
        assert refused(channel) == grpc.StatusCode.UNAVAILABLE
    distrusting = grpc.ssl_channel_credentials(root_certificates=other_ca.ca.read_bytes())
    with sync_channel(tls_server.addr, distrusting) as channel:
        assert refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_services_talk_mutual_tls_with_the_settings_they_share(
    mtls_server: BackgroundServer, ca: LocalCa
) -> None:
    """The orders service, the worker and the monitor present FULFILLMENT_TLS_CERT as
    their client certificate: the same certificate the server listens with."""
    credentials = channel_credentials(tls_settings(ca, mutual=True))
    assert credentials is not None
    with sync_channel(mtls_server.addr, credentials) as channel:
        assert check(channel) == SERVING
    with lifecycle_channel(mtls_server.addr, credentials) as channel:
        assert check(channel) == SERVING

    async def over_aio() -> int:
        async with aio_channel(mtls_server.addr, credentials) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            return reply.status

    assert asyncio.run(over_aio()) == SERVING


def test_a_client_certificate_of_the_same_ca_is_accepted(mtls_server: BackgroundServer, ca: LocalCa) -> None:
    client = grpc.ssl_channel_credentials(
        root_certificates=ca.ca.read_bytes(),
        private_key=ca.client_key.read_bytes(),
        certificate_chain=ca.client_cert.read_bytes(),
    )
    with sync_channel(mtls_server.addr, client) as channel:
        assert check(channel) == SERVING


def test_a_client_without_a_certificate_is_refused(mtls_server: BackgroundServer, ca: LocalCa) -> None:
    anonymous = grpc.ssl_channel_credentials(root_certificates=ca.ca.read_bytes())
    with sync_channel(mtls_server.addr, anonymous) as channel:
        assert refused(channel) == grpc.StatusCode.UNAVAILABLE
    with sync_channel(mtls_server.addr) as channel:
        assert refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_a_client_certificate_of_another_ca_is_refused(
    mtls_server: BackgroundServer, ca: LocalCa, other_ca: LocalCa
) -> None:
    stranger = grpc.ssl_channel_credentials(
        root_certificates=ca.ca.read_bytes(),
        private_key=other_ca.client_key.read_bytes(),
        certificate_chain=other_ca.client_cert.read_bytes(),
    )
    with sync_channel(mtls_server.addr, stranger) as channel:
        assert refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_the_server_name_is_checked_against_the_dialled_host(
    mtls_server: BackgroundServer, ca: LocalCa
) -> None:
    """127.0.0.1 is in the certificate; a name it does not carry is refused."""
    credentials = channel_credentials(tls_settings(ca, mutual=True))
    assert credentials is not None
    port = mtls_server.addr.rpartition(":")[2]
    with grpc.secure_channel(
        f"127.0.0.1:{port}", credentials, options=[("grpc.ssl_target_name_override", "db.example")]
    ) as channel:
        assert refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_local_ca_keys_are_private_and_certificates_public(ca: LocalCa) -> None:
    for key in (ca.ca_key, ca.server_key, ca.client_key):
        assert key.stat().st_mode & 0o777 == 0o600, key
    for cert in (ca.ca, ca.server_cert, ca.client_cert):
        assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----"), cert


def test_plaintext_stays_the_default() -> None:
    settings = Settings.from_env({})
    assert server_credentials(settings) is None
    assert channel_credentials(settings) is None

