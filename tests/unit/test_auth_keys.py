"""The local signing key: created on first use, private, stable, one key however many
processes start at once; its RFC 7638 kid and its public key set."""

from __future__ import annotations

import json
import multiprocessing
import stat
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.utils import base64url_decode

from services.common.auth.keys import (
    is_local_key_set,
    key_id,
    load_or_create_signing_key,
    local_jwks,
    signing_key_path,
    write_public_jwks,
)
from services.common.config import ConfigError
from tests.auth_tokens import auth_settings

pytestmark = pytest.mark.unit


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_use_creates_an_es256_key_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "fulfillment" / "signing-key.pem"
    key = load_or_create_signing_key(path)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8
    assert [p.name for p in path.parent.iterdir()] == ["signing-key.pem"], "a temporary file was left"


def test_the_key_is_the_same_on_every_later_load(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    first = load_or_create_signing_key(path)
    again = load_or_create_signing_key(path)
    assert key_id(first.public_key()) == key_id(again.public_key())


def _report_kid(path: Path, start: Barrier, kids: Queue[str]) -> None:
    start.wait(timeout=30)
    kids.put(key_id(load_or_create_signing_key(path).public_key()))


def test_processes_starting_at_once_all_get_one_and_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "fulfillment" / "signing-key.pem"
    context = multiprocessing.get_context("fork")
    start, kids = context.Barrier(6), context.Queue()
    processes = [context.Process(target=_report_kid, args=(path, start, kids)) for _ in range(6)]
    for process in processes:
        process.start()
    reported = [kids.get(timeout=30) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert len(set(reported)) == 1
    assert reported[0] == key_id(load_or_create_signing_key(path).public_key())
    assert [p.name for p in path.parent.iterdir()] == ["signing-key.pem"]


def test_threads_starting_at_once_all_get_one_and_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    with ThreadPoolExecutor(8) as pool:
        kids = set(pool.map(lambda _: key_id(load_or_create_signing_key(path).public_key()), range(32)))
    assert len(kids) == 1


def test_an_operator_supplied_rsa_key_is_used_as_it_is(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.pem"
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ))
    loaded = load_or_create_signing_key(path)
    assert isinstance(loaded, rsa.RSAPrivateKey) and key_id(loaded.public_key()) == key_id(key.public_key())


@pytest.mark.parametrize("content", [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_a_file_that_is_no_key_is_a_configuration_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "signing-key.pem"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="is not an unencrypted PEM private key"):
        load_or_create_signing_key(path)


def test_a_weak_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p384.pem"
    path.write_bytes(ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    with pytest.raises(ConfigError, match="P-256"):
        load_or_create_signing_key(path)


def test_kid_is_the_rfc_7638_thumbprint() -> None:
    """The example of RFC 7638, section 3.1."""
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
        "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI"
        "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    numbers = rsa.RSAPublicNumbers(
        int.from_bytes(base64url_decode("AQAB"), "big"), int.from_bytes(base64url_decode(n), "big")
    )
    assert key_id(numbers.public_key()) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_the_public_key_set_holds_the_public_half_only(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    jwks = local_jwks(settings)
    [jwk] = jwks["keys"]
    public = load_or_create_signing_key(signing_key_path(settings)).public_key()
    assert jwk["kid"] == key_id(public)
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in jwk, "the private scalar must never be published"


def test_jwks_json_is_written_next_to_the_key_for_the_gateway(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    path = write_public_jwks(settings)
    assert path == signing_key_path(settings).parent / "jwks.json"
    assert json.loads(path.read_text()) == local_jwks(settings)
    assert _mode(path) == 0o644
    written = path.stat().st_mtime_ns
    assert write_public_jwks(settings) == path and path.stat().st_mtime_ns == written


def test_jwks_json_goes_elsewhere_when_the_key_sits_on_a_read_only_mount(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    path = write_public_jwks(settings, tmp_path / "gateway")
    assert path == tmp_path / "gateway" / "jwks.json"


def test_the_local_key_set_is_the_default_or_a_file_holding_the_local_key(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    assert is_local_key_set(settings)
    published = write_public_jwks(settings)
    assert is_local_key_set(auth_settings(tmp_path, auth_jwks=str(published)))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"keys": [{"kty": "EC", "kid": "someone-else"}]}))
    assert not is_local_key_set(auth_settings(tmp_path, auth_jwks=str(other)))
    assert not is_local_key_set(auth_settings(tmp_path, auth_jwks=str(tmp_path / "missing.json")))
    assert not is_local_key_set(auth_settings(tmp_path, auth_jwks="https://idp.example/certs"))
