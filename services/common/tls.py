"""Transport security for every gRPC listener and client, from three settings.

- nothing set: plaintext (the default, meant for loopback);
- FULFILLMENT_TLS_CERT + FULFILLMENT_TLS_KEY: servers listen with TLS; clients use TLS and
  verify the server against the system's roots (or GRPC_DEFAULT_SSL_ROOTS_FILE_PATH);
- and FULFILLMENT_TLS_CA: mutual TLS. Servers require a client certificate signed by that
  CA; clients verify the server against it and present their own certificate and key.

Every role reads the same three settings, so one certificate serves a process both as a
server and as a client of the other services (its extended key usage must allow both).
Credentials are built per process (after any fork), from files read at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from services.common.config import Settings


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path | None  # set: mutual TLS

    @property
    def mutual(self) -> bool:
        return self.ca is not None


def tls_files(settings: Settings) -> TlsFiles | None:
    """The configured files, or None for plaintext (Settings.from_env checked them)."""
    if not settings.tls_cert:
        return None
    return TlsFiles(
        Path(settings.tls_cert), Path(settings.tls_key), Path(settings.tls_ca) if settings.tls_ca else None
    )


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """For `server.add_secure_port`; None means listen in plaintext."""
    files = tls_files(settings)
    if files is None:
        return None
    return grpc.ssl_server_credentials(
        [(files.key.read_bytes(), files.cert.read_bytes())],
        root_certificates=files.ca.read_bytes() if files.ca else None,
        require_client_auth=files.mutual,
    )


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """For sync and aio channels alike; None means dial in plaintext.

    The server's certificate must name the host part of the dialled address (a DNS name,
    or an IP address SAN such as 127.0.0.1), so no target name override is needed.
    """
    files = tls_files(settings)
    if files is None:
        return None
    if files.ca is None:
        return grpc.ssl_channel_credentials()
    return grpc.ssl_channel_credentials(
        root_certificates=files.ca.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )
