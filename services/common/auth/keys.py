"""The local signing key: created on first use, its key id, and its public key set.

The key file is the one secret of the local flow: `fulfillment token` and the services'
own tokens are signed with it, and its public half (the JWKS) is what the services and
the gateway verify with unless FULFILLMENT_AUTH_JWKS names another issuer's key set.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from services.common.config import ConfigError, Settings, default_signing_key_path
from services.common.logs import log_event

logger = logging.getLogger("fulfillment.auth")

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

JWKS_FILENAME = "jwks.json"
MIN_RSA_BITS = 2048


def signing_key_path(settings: Settings) -> Path:
    if settings.auth_signing_key:
        return Path(settings.auth_signing_key).expanduser()
    return default_signing_key_path(os.environ)


def load_or_create_signing_key(path: Path) -> SigningKey:
    """The key at `path`; a new ES256 (P-256) key is created there when none exists.

    Several processes start at once under `fulfillment up` and each may find no key: the
    new key is written to a private temporary file and hard-linked into place, which
    fails when the name exists, so exactly one key wins and every loser reads it.
    """
    try:
        return _read_signing_key(path)
    except FileNotFoundError:
        pass
    _create_private_dir(path.parent)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # mkstemp creates the file 0600 and exclusively: the key is never readable by others,
    # not even for a moment.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return _read_signing_key(path)
    finally:
        os.unlink(temporary)
    log_event(logger, "signing_key_created", path=str(path), kid=key_id(key.public_key()))
    return key


def _create_private_dir(directory: Path) -> None:
    if directory.is_dir():
        return  # someone else's choice of place (a mounted secret, say): leave its mode
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _read_signing_key(path: Path) -> SigningKey:
    pem = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"the signing key {path} is not an unencrypted PEM private key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= MIN_RSA_BITS:
        return key
    raise ConfigError(
        f"the signing key {path} must be an EC P-256 (ES256) or an RSA key of at least "
        f"{MIN_RSA_BITS} bits (RS256)"
    )


def algorithm_of(key: SigningKey | PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ES256"
    return "RS256"


def public_jwk(public_key: PublicKey) -> dict[str, Any]:
    """The key as a JWK carrying its kid, algorithm and use."""
    jwk: dict[str, Any]
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    return {**jwk, "kid": key_id(public_key), "alg": algorithm_of(public_key), "use": "sig"}


def key_id(public_key: PublicKey) -> str:
    """The RFC 7638 JWK thumbprint: base64url(SHA-256) of the required members, in
    lexicographic order, without whitespace. It names the key by its content, so every
    process derives the same kid and a new key gets a new one."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    else:
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        required = {name: jwk[name] for name in ("e", "kty", "n")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(canonical).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def public_jwks(private_key: SigningKey) -> dict[str, Any]:
    return {"keys": [public_jwk(private_key.public_key())]}


def local_jwks(settings: Settings) -> dict[str, Any]:
    """The public key set of the local signing key (created if missing)."""
    return public_jwks(load_or_create_signing_key(signing_key_path(settings)))


def write_public_jwks(settings: Settings, directory: Path | None = None) -> Path:
    """Write the local key set as jwks.json next to the signing key (or in `directory`,
    for a key on a read-only mount) and return its path.

    The gateway reads this file at start (Envoy jwt_authn local_jwks), so call this before
    starting it. The file is public (0644) and replaced atomically, and left alone when it
    already holds the same keys, so a reader never sees half a file.
    """
    key_path = signing_key_path(settings)
    target = (directory or key_path.parent) / JWKS_FILENAME
    text = json.dumps(local_jwks(settings), indent=2, sort_keys=True) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if target.read_text() == text:
            return target
    except FileNotFoundError:
        pass
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".jwks-")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return target


def is_local_key_set(settings: Settings) -> bool:
    """Whether tokens signed with the local key verify under the configured key set: the
    default, or a JWKS file that holds the local key (jwks.json, or a copy of it). A URL
    is taken to be another issuer's."""
    if not settings.auth_jwks:
        return True
    if "://" in settings.auth_jwks:
        return False
    try:
        published = json.loads(Path(settings.auth_jwks).expanduser().read_text())
        kids = {key.get("kid") for key in published.get("keys", []) if isinstance(key, dict)}
    except (OSError, ValueError, AttributeError):
        return False
    local_kid = key_id(load_or_create_signing_key(signing_key_path(settings)).public_key())
    return local_kid in kids
