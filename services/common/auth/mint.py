"""Tokens signed with the local signing key: `fulfillment token`, and the `service` token
the worker, the monitor and the orders service present to the other services."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import jwt

from services.common.auth.keys import (
    SigningKey,
    algorithm_of,
    is_local_key_set,
    key_id,
    load_or_create_signing_key,
    signing_key_path,
)
from services.common.auth.principal import Role
from services.common.config import ConfigError, Settings

# A service token lives minutes, so one that leaks is soon worthless; it is renewed when
# less than a third of its life is left, long before a call could carry an expired one.
SERVICE_TOKEN_TTL_S = 300.0
RENEW_WHEN_LEFT = 1 / 3

TokenSource = Callable[[], str]


class TokenMinter:
    """Signs tokens with the local signing key (loaded, or created, once)."""

    def __init__(self, settings: Settings, key: SigningKey | None = None) -> None:
        self._settings = settings
        self._key = key if key is not None else load_or_create_signing_key(signing_key_path(settings))
        public_key = self._key.public_key()
        self._headers = {"kid": key_id(public_key), "typ": "JWT"}
        self._algorithm = algorithm_of(public_key)

    def mint(
        self, roles: Iterable[Role], subject: str, ttl_s: float, now: float | None = None
    ) -> str:
        if ttl_s <= 0:
            raise ValueError(f"a token's lifetime must be positive, got {ttl_s}")
        if not subject:
            raise ValueError("a token needs a subject")
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self._settings.auth_issuer,
            "aud": self._settings.auth_audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + math.ceil(ttl_s),
        }
        _put_claim(claims, self._settings.auth_roles_claim, [role.value for role in roles])
        return jwt.encode(claims, self._key, algorithm=self._algorithm, headers=self._headers)


def mint_token(settings: Settings, role: Role, subject: str, ttl_s: float) -> str:
    """One token for `subject` with one role, valid for `ttl_s` seconds from now."""
    return TokenMinter(settings).mint([role], subject, ttl_s)


def _put_claim(claims: dict[str, Any], path: str, value: Any) -> None:
    """Set a claim by dotted path (realm_access.roles -> {"realm_access": {"roles": ...}}),
    where the verifier will look for it."""
    *parents, leaf = path.split(".")
    target = claims
    for name in parents:
        target = target.setdefault(name, {})
    target[leaf] = value


class ServiceTokenSource:
    """The token this process presents as a `service` caller: FULFILLMENT_SERVICE_TOKEN
    when set (an external identity provider issued it), else one minted from the local
    signing key and renewed before it expires.

    Called for every outgoing RPC, from any thread: a call is a clock read and a compare,
    and only a renewal takes the lock.
    """

    def __init__(
        self,
        settings: Settings,
        subject: str,
        ttl_s: float = SERVICE_TOKEN_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fixed = settings.service_token
        self._minter: TokenMinter | None = None
        if not self._fixed:
            if not is_local_key_set(settings):
                raise ConfigError(
                    "FULFILLMENT_SERVICE_TOKEN is required when FULFILLMENT_AUTH_JWKS names "
                    "another issuer's key set: tokens minted from the local key would be refused"
                )
            self._minter = TokenMinter(settings)
        self._subject = subject
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        # (token, when to renew it), replaced as a whole so readers need no lock.
        self._current: tuple[str, float] | None = None

    def __call__(self) -> str:
        if self._fixed:
            return self._fixed
        current = self._current
        if current is not None and self._clock() < current[1]:
            return current[0]
        with self._lock:
            current = self._current
            now = self._clock()
            if current is None or now >= current[1]:
                assert self._minter is not None
                token = self._minter.mint([Role.SERVICE], self._subject, self._ttl_s, now=now)
                current = (token, now + self._ttl_s * (1 - RENEW_WHEN_LEFT))
                self._current = current
            return current[0]
