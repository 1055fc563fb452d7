"""A JWKS fetched from an identity provider's URL (a loopback HTTP server here): read once,
never per request, bounded by a timeout, and an identity provider that is down at start
does not stop the service."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.auth.key_set import KeysUnavailable, fetch_jwks
from services.common.auth.keys import public_jwk
from services.common.auth.principal import Role
from services.common.auth.verify import InvalidToken, TokenVerifier
from tests.auth_tokens import auth_settings, claims, sign

pytestmark = pytest.mark.integration

ISSUER = "https://idp.example/realms/shop"


@dataclass
class IdentityProvider:
    key: rsa.RSAPrivateKey
    body: bytes = b""
    delay_s: float = 0.0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def idp(idp_key: rsa.RSAPrivateKey) -> Iterator[tuple[IdentityProvider, str]]:
    provider = IdentityProvider(idp_key)
    provider.body = json.dumps({"keys": [{**public_jwk(idp_key.public_key()), "kid": "idp-1"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            with provider.lock:
                provider.requests += 1
            time.sleep(provider.delay_s)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(provider.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider, f"http://127.0.0.1:{server.server_address[1]}/certs"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _verifier(tmp_path: Path, url: str) -> TokenVerifier:
    return TokenVerifier.from_settings(auth_settings(
        tmp_path, auth_jwks=url, auth_issuer=ISSUER, auth_roles_claim="realm_access.roles"
    ))


def _token(key: rsa.RSAPrivateKey, kid: str = "idp-1") -> str:
    return sign(key, claims(iss=ISSUER, roles=None, realm_access={"roles": ["admin"]}), kid=kid)


def test_the_key_set_is_fetched_once_not_per_request(
    tmp_path: Path, idp: tuple[IdentityProvider, str]
) -> None:
    provider, url = idp
    verifier = _verifier(tmp_path, url)
    token = _token(provider.key)
    for _ in range(50):
        assert verifier.verify(token).roles == frozenset({Role.ADMIN})
    assert provider.requests == 1


def test_made_up_kids_cannot_make_it_fetch_per_request(
    tmp_path: Path, idp: tuple[IdentityProvider, str]
) -> None:
    provider, url = idp
    verifier = _verifier(tmp_path, url)
    started = time.monotonic()
    for n in range(100):
        with pytest.raises(InvalidToken, match="does not know"):
            verifier.verify(_token(provider.key, kid=f"forged-{n}"))
    assert time.monotonic() - started < 5, "the test outlived the refresh interval it relies on"
    assert provider.requests == 1, "the first fetch is recent, so none of them fetches again"


def test_a_slow_identity_provider_meets_the_timeout(idp: tuple[IdentityProvider, str]) -> None:
    provider, url = idp
    provider.delay_s = 3.0
    started = time.monotonic()
    with pytest.raises(OSError):
        fetch_jwks(url, timeout_s=0.5)
    assert time.monotonic() - started < 2.5


def test_an_oversized_key_set_is_refused(idp: tuple[IdentityProvider, str]) -> None:
    provider, url = idp
    provider.body = b'{"keys": [' + b" " * (2 * 1024 * 1024) + b"]}"
    with pytest.raises(ValueError, match="larger than"):
        fetch_jwks(url)


def test_an_identity_provider_down_at_start_does_not_stop_the_service(
    tmp_path: Path, idp_key: rsa.RSAPrivateKey
) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as parked:
        port = parked.server_address[1]  # bound, then closed: nothing listens there after
    verifier = _verifier(tmp_path, f"http://127.0.0.1:{port}/certs")
    with pytest.raises(KeysUnavailable):
        verifier.verify(_token(idp_key))
