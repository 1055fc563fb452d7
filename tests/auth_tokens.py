"""Tokens for the authentication tests: settings with a private signing key, and tokens
made by hand, good and bad (forged, unsigned, HMAC-signed with a public key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.common.auth.keys import key_id, load_or_create_signing_key, signing_key_path
from services.common.config import Settings

ISSUER = "fulfillment-dev"
AUDIENCE = "fulfillment"


def auth_settings(state_dir: Path, **changes: Any) -> Settings:
    """Default auth settings with the signing key under `state_dir` (never the user's)."""
    settings = Settings.from_env({"XDG_STATE_HOME": str(state_dir)})
    return replace(settings, **changes)


def local_key(settings: Settings) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    return load_or_create_signing_key(signing_key_path(settings))


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for a customer; a change to None drops that claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "nbf": now,
        "exp": now + 300, "roles": ["customer"],
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    payload: dict[str, Any],
    kid: str | None = None,
    algorithm: str | None = None,
) -> str:
    """A token signed with `key`, naming `kid` (the key's own thumbprint by default)."""
    algorithm = algorithm or ("ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256")
    headers = {"kid": kid if kid is not None else key_id(key.public_key())}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_segment(document: Any) -> str:
    """A JWT segment: JSON (or raw bytes, for a signature) in unpadded base64url."""
    if isinstance(document, bytes):
        return _b64(document)
    return _b64(json.dumps(document, separators=(",", ":")).encode())


def unsigned(payload: dict[str, Any], kid: str, alg: str = "none") -> str:
    """`alg: none`: what an attacker sends hoping the signature is not checked."""
    return f"{b64_segment({'alg': alg, 'typ': 'JWT', 'kid': kid})}.{b64_segment(payload)}."


def hmac_signed(payload: dict[str, Any], secret: bytes, kid: str, alg: str = "HS256") -> str:
    """The key-confusion attack: HMAC with a secret everyone has (the public key)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{b64_segment({'alg': alg, 'typ': 'JWT', 'kid': kid})}.{b64_segment(payload)}"
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def with_payload(token: str, payload: dict[str, Any]) -> str:
    """`token` with its payload replaced and its original signature kept (tampering)."""
    header, _, signature = token.split(".")
    return f"{header}.{b64_segment(payload)}.{signature}"


def assert_never_quoted(message: str, token: str) -> None:
    assert token not in message
    for part in token.split("."):
        if len(part) >= 8:
            assert part not in message, "the message quotes a part of the token"
