"""A local certificate authority for trying TLS and mTLS (`fulfillment tls-dev DIR`).

It writes a CA, a server certificate and a client certificate, all ECDSA P-256:
- the server certificate names every address the services are dialled by here, in docker
  compose and in Kubernetes (localhost, 127.0.0.1, ::1 and the service names), and may
  also authenticate as a client, because the orders service, the worker and the monitor
  present the same FULFILLMENT_TLS_CERT when they call a service;
- the client certificate is for callers that only call (grpcurl, a test, Envoy).
Private keys are written 0600. Not for production: use your own CA or cert-manager there.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The names the services are dialled by: loopback, and the docker compose and Kubernetes
# Service names (Kubernetes also resolves <service>.<namespace>.svc: add those with --host).
SERVER_NAMES = ("localhost", "127.0.0.1", "::1", "inventory", "orders", "envoy")
VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class LocalCa:
    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def write_local_ca(directory: Path, extra_names: Iterable[str] = ()) -> LocalCa:
    """Write a fresh CA and the certificates it signs into `directory`; overwrites them."""
    directory.mkdir(parents=True, exist_ok=True)
    files = LocalCa(
        ca=directory / "ca.pem",
        ca_key=directory / "ca-key.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("fulfillment local CA")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(files.ca_key, ca_key)
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    names = list(dict.fromkeys([*SERVER_NAMES, *extra_names]))
    _issue(files.server_cert, files.server_key, "fulfillment services", names,
           [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], ca_cert, ca_key, now)
    _issue(files.client_cert, files.client_key, "fulfillment client", [],
           [ExtendedKeyUsageOID.CLIENT_AUTH], ca_cert, ca_key, now)
    return files


def _issue(
    cert_path: Path,
    key_path: Path,
    common_name: str,
    names: list[str],
    usages: list[x509.ObjectIdentifier],
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(_name(common_name), ca_cert.subject, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
        )
    _write_key(key_path, key)
    cert_path.write_bytes(
        builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Created 0600 from the start: the key is never readable by others, not even briefly."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
