"""Bearer token verification: a JWT in, the Principal it authenticates out.

The rules of the contract: RS256 or ES256 only (`alg: none` and every HMAC refused, so a
public key can never serve as a shared secret), `iss`, `aud`, `exp` and `sub` required,
`nbf` honoured, a small leeway for clock skew, keys from the configured JWKS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from services.common.auth.key_set import ALLOWED_ALGORITHMS, KeySet, KeysUnavailable
from services.common.auth.principal import Principal, Role
from services.common.auth.verified_tokens import VerifiedTokens
from services.common.config import Settings

# Seconds a token may be past `exp` or before `nbf`/`iat`, for clocks that disagree.
LEEWAY_S = 30.0
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
# Far above any real JWT (a few hundred bytes to a few KB); refusing longer input early
# keeps garbage from costing a base64 and JSON parse.
MAX_TOKEN_CHARS = 16 * 1024

_ROLE_BY_VALUE = {role.value: role for role in Role}

AUTHORIZATION = "authorization"
MISSING_TOKEN = (
    "this call needs a bearer token: send the metadata 'authorization: Bearer <token>' "
    "(`fulfillment token --role ...` prints one)"
)


class InvalidToken(Exception):
    """A token that does not authenticate its bearer. The message says what is wrong in
    plain words, fit for the caller, and never contains the token or any part of it."""


# Every message is fixed text: PyJWT's own messages may quote header or claim values.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt_errors.ExpiredSignatureError, "the token has expired"),
    (jwt_errors.ImmatureSignatureError, "the token is not valid yet (its nbf or iat is in the future)"),
    (jwt_errors.InvalidIssuerError, "the token's issuer (iss) is not the one this service trusts"),
    (jwt_errors.InvalidAudienceError, "the token's audience (aud) is not this service's"),
    (jwt_errors.InvalidSignatureError, "the token's signature does not verify"),
    (jwt_errors.InvalidAlgorithmError, "the token's algorithm is not allowed (RS256 or ES256 only)"),
    (jwt_errors.InvalidSubjectError, "the token's subject (sub) must be a non-empty string"),
)
MALFORMED = "the bearer token is malformed: it is not a signed JWT"


class TokenVerifier:
    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str,
        audience: str,
        roles_claim: str,
        leeway_s: float = LEEWAY_S,
    ) -> None:
        self.keys = keys
        self._issuer = issuer
        self._audience = audience
        self._roles_claim = roles_claim
        self._leeway_s = leeway_s
        self._verified = VerifiedTokens()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        """Reads the key set now (see KeySet.from_settings for what fails the start)."""
        return cls(
            KeySet.from_settings(settings),
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            roles_claim=settings.auth_roles_claim,
        )

    def verify(self, token: str) -> Principal:
        """Raises InvalidToken, or KeysUnavailable when no key set could be read yet. May
        re-read the key set (see KeySet), so async code calls verify_async."""
        known = self._verified.recall(token, self.keys)
        if known is not None:
            return known
        algorithm, kid = self._header(token)
        if self.keys.refresh_due(kid):
            self.keys.refresh()
        return self._decode(token, algorithm, kid)

    async def verify_async(self, token: str) -> Principal:
        """verify, with the rare key set read (a file, or a URL with a timeout) in a thread
        so that it never blocks the event loop."""
        known = self._verified.recall(token, self.keys)
        if known is not None:
            return known
        algorithm, kid = self._header(token)
        if self.keys.refresh_due(kid):
            await asyncio.to_thread(self.keys.refresh)
        return self._decode(token, algorithm, kid)

    @staticmethod
    def _header(token: str) -> tuple[str, str | None]:
        if not token:
            raise InvalidToken("no bearer token was sent")
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise InvalidToken(MALFORMED)
        try:
            header = jwt.get_unverified_header(token)
        except Exception:
            # Any input at all must end as InvalidToken: a parser's surprise on a caller's
            # bytes must not reach the caller as UNKNOWN.
            raise InvalidToken(MALFORMED) from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise InvalidToken("the token's algorithm is not allowed (RS256 or ES256 only)")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken(MALFORMED)
        return algorithm, kid

    def _decode(self, token: str, algorithm: str, kid: str | None) -> Principal:
        generation = self.keys.generation
        key = self.keys.cached(kid)
        if key is None:
            if not self.keys.loaded:
                raise KeysUnavailable(f"the key set {self.keys.source} could not be read")
            raise InvalidToken("the token is signed with a key this service does not know (kid)")
        if key.algorithm_name != algorithm:
            raise InvalidToken("the token's algorithm does not match its signing key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt_errors.MissingRequiredClaimError as exc:
            # The claim's name comes from REQUIRED_CLAIMS, not from the token.
            raise InvalidToken(f"the token lacks the required claim {exc.claim}") from None
        except Exception as exc:  # as in _header: whatever the claims hold, InvalidToken
            raise InvalidToken(_reason(exc)) from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.strip():
            raise InvalidToken("the token's subject (sub) must be a non-empty string")
        principal = Principal(subject, roles_from_claims(claims, self._roles_claim))
        valid_until = float(claims["exp"]) + self._leeway_s
        self._verified.remember(token, principal, kid, valid_until, generation)
        return principal


def _reason(exc: Exception) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return MALFORMED  # a claim of the wrong type (a text exp, say) or an unreadable payload


def roles_from_claims(claims: Mapping[str, Any], claim: str) -> frozenset[Role]:
    """The roles of ours named in `claim`: a top-level claim of that exact name (URL-like
    names such as https://example.com/roles contain dots), else a dotted path into nested
    objects (realm_access.roles). A missing claim means no roles; only strings count, and
    names that are none of our roles (Keycloak's offline_access, say) are ignored."""
    value: Any = claims.get(claim) if claim in claims else _nested(claims, claim.split("."))
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return frozenset(
        _ROLE_BY_VALUE[name] for name in names if isinstance(name, str) and name in _ROLE_BY_VALUE
    )


def _nested(claims: Mapping[str, Any], path: list[str]) -> Any:
    value: Any = claims
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The token of the one `authorization: Bearer <token>` entry; InvalidToken otherwise."""
    values = [value for key, value in metadata or () if key == AUTHORIZATION]
    if not values:
        raise InvalidToken(MISSING_TOKEN)
    if len(values) > 1:
        raise InvalidToken("more than one authorization entry was sent; send exactly one")
    value = values[0].decode("ascii", "replace") if isinstance(values[0], bytes) else values[0]
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("the authorization metadata must read 'Bearer <token>'")
    return token.strip()
