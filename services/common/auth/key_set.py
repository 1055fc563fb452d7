"""The public keys tokens are verified with: a JWKS from a file, an http(s) URL or the
local signing key, held in memory.

The set is read once, then again only when a token names a key it does not hold (a new
key after rotation) or when it is older than `max_age_s` (so a key the issuer withdrew
stops being trusted), and never twice within `refresh_interval_s`: a flood of tokens
with made-up kids costs one read every few seconds, not one per request.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from services.common.auth.keys import MIN_RSA_BITS, local_jwks, signing_key_path
from services.common.config import ConfigError, Settings, redact_url
from services.common.logs import log_event

logger = logging.getLogger("fulfillment.auth")

# Asymmetric only: with an HMAC algorithm a public key could be used as the secret.
ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256"})

JwksLoader = Callable[[], Mapping[str, Any]]

FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 1024 * 1024


class KeysUnavailable(Exception):
    """No key set could be read yet: the verifier cannot judge any token."""


def fetch_jwks(url: str, timeout_s: float = FETCH_TIMEOUT_S) -> Mapping[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    # Settings admit only http(s) URLs here, never file:// or other urllib schemes.
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError(f"the key set at {redact_url(url)} is larger than {MAX_JWKS_BYTES} bytes")
    return _as_jwks(json.loads(body))


def read_jwks_file(path: Path) -> Mapping[str, Any]:
    return _as_jwks(json.loads(path.read_text()))


def _as_jwks(document: Any) -> Mapping[str, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWKS is a JSON object with a "keys" list')
    return document


def jwks_source(settings: Settings) -> tuple[JwksLoader, str]:
    """How to read the configured key set, and how to name it in logs and errors."""
    location = settings.auth_jwks
    if not location:
        return partial(local_jwks, settings), f"the local key set of {signing_key_path(settings)}"
    if "://" in location:
        return partial(fetch_jwks, location), redact_url(location)
    path = Path(location).expanduser()
    return partial(read_jwks_file, path), str(path)


def usable_keys(jwks: Mapping[str, Any]) -> dict[str | None, PyJWK]:
    """The signature keys of a set that an allowed algorithm can use, by kid. Anything
    else an issuer publishes (encryption keys, other curves, HMAC secrets) is skipped."""
    keys: dict[str | None, PyJWK] = {}
    for data in jwks.get("keys", []):
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        if data.get("kty") not in ("RSA", "EC"):
            continue
        try:
            key = PyJWK(data)
        except PyJWTError:  # members missing or malformed: no key we could verify with
            continue
        if key.algorithm_name not in ALLOWED_ALGORITHMS:
            continue
        if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
            continue
        kid = data.get("kid")
        keys[kid if isinstance(kid, str) else None] = key
    return keys


class KeySet:
    def __init__(
        self,
        load: JwksLoader,
        source: str,
        *,
        refresh_interval_s: float = 5.0,
        max_age_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self._load = load
        self._refresh_interval_s = refresh_interval_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._keys: dict[str | None, PyJWK] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()
        # Bumped by every successful read: what was verified before may not hold now.
        self.generation = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> KeySet:
        """The configured key set, read now. A file or the local key that cannot be read is
        a configuration error that stops the start; an unreachable URL is only logged,
        since the identity provider may come up after us (calls answer UNAVAILABLE until
        it does)."""
        load, source = jwks_source(settings)
        key_set = cls(load, source)
        try:
            key_set.refresh()
        except KeysUnavailable as exc:
            if "://" not in settings.auth_jwks:
                raise ConfigError(str(exc)) from None
        return key_set

    @property
    def loaded(self) -> bool:
        return self._loaded_at is not None

    def cached(self, kid: str | None) -> PyJWK | None:
        """The key a token's kid names, from memory only. A token without a kid is
        verified with the set's only key, if it has exactly one."""
        keys = self._keys
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        return keys.get(kid)

    def refresh_due(self, kid: str | None) -> bool:
        """Whether `refresh` should run before judging a token that names `kid`."""
        now = self._clock()
        stale = self._loaded_at is None or now - self._loaded_at >= self._max_age_s
        if not stale and self.cached(kid) is not None:
            return False
        return self._attempted_at is None or now - self._attempted_at >= self._refresh_interval_s

    def refresh(self) -> None:
        """Read the set again unless someone did within the refresh interval. A failed read
        keeps the keys already held; with none held it raises KeysUnavailable."""
        with self._lock:
            now = self._clock()
            recent = self._attempted_at is not None and now - self._attempted_at < self._refresh_interval_s
            if not recent:
                self._attempted_at = now
                self._read(now)
            if self._loaded_at is None:
                raise KeysUnavailable(f"the key set {self.source} could not be read")

    def _read(self, now: float) -> None:
        try:
            keys = usable_keys(self._load())
        except (OSError, ValueError, ConfigError) as exc:
            log_event(
                logger, "jwks_unreadable", logging.WARNING, source=self.source,
                error=f"{type(exc).__name__}: {exc}", keeping=len(self._keys),
            )
            return
        if not keys:
            log_event(logger, "jwks_without_usable_keys", logging.WARNING, source=self.source)
        elif keys.keys() != self._keys.keys():
            log_event(logger, "jwks_loaded", source=self.source, kids=sorted(map(str, keys)))
        self._keys = keys
        self._loaded_at = now
        self.generation += 1
