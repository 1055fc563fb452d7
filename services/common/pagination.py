"""AIP-158 pagination: page sizes and opaque, signed keyset page tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from services.common.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_INT64 = 2**63 - 1
MIN_SECRET_BYTES = 16
_MAX_TOKEN_LENGTH = 1024
# 128 bits of HMAC-SHA256: forging a token takes ~2**128 guesses, each one an RPC.
_TAG_BYTES = 16

Page = TypeVar("Page")
Key = TypeVar("Key")


def resolve_page_size(
    requested: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """0 means the default, above the maximum is clamped, negative is INVALID_ARGUMENT."""
    if requested < 0:
        raise InvalidArgument(
            f"page_size must be >= 0, got {requested}",
            [FieldViolation("page_size", "must be >= 0 (0 means the default)")],
        )
    return min(requested or default, maximum)


def _fingerprint(filters: dict[str, Any]) -> str:
    canonical = json.dumps(filters, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class PageTokens:
    """Issues and reads page tokens: the last row's sort key (keyset pagination), the
    listing it belongs to and a fingerprint of its filters, signed with HMAC-SHA256 under
    the service's secret. A caller can neither forge nor alter a token, and a token from
    another deployment (another secret) is refused like any altered one.

    Layout: base64url(tag || body), tag the first 16 bytes of HMAC-SHA256(secret, body),
    body compact JSON {"k": kind, "v": key, "f": fingerprint}. Every replica of a service
    holds the same secret, so any of them reads a token another issued.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a page token secret needs at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_TAG_BYTES]

    def encode(self, kind: str, last_key: list[Any], filters: dict[str, Any] | None = None) -> str:
        body = {"k": kind, "v": last_key, "f": _fingerprint(filters or {})}
        raw = json.dumps(body, separators=(",", ":"), default=str).encode()
        return base64.urlsafe_b64encode(self._tag(raw) + raw).decode().rstrip("=")

    def decode(
        self,
        token: str,
        kind: str,
        filters: dict[str, Any] | None,
        parse: Callable[[list[Any]], Key],
    ) -> Key | None:
        """The sort key after which the next page starts, or None for the first page.

        `parse` checks the type and range of every part of the key and turns it into what
        the caller pages by; a key it cannot read (raises anything) is refused like an
        altered token rather than left to reach SQL.
        """
        if not token:
            return None
        bad = InvalidArgument(
            "page_token is not a token this API issued for this request; "
            "pass the next_page_token from the previous response with the same filters",
            [FieldViolation("page_token", "unrecognised or altered token")],
        )
        if len(token) > _MAX_TOKEN_LENGTH:
            raise bad
        try:
            signed = base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode())
        except (binascii.Error, ValueError):
            raise bad from None
        tag, raw = signed[:_TAG_BYTES], signed[_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(raw)):
            raise bad
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise bad from None
        if (
            not isinstance(body, dict)
            or body.get("k") != kind
            or body.get("f") != _fingerprint(filters or {})
            or not isinstance(body.get("v"), list)
        ):
            raise bad
        try:
            return parse(body["v"])
        except Exception:
            raise bad from None


class PageTokenSource:
    """A service's PageTokens, its secret read once, when first needed."""

    def __init__(self, read_secret: Callable[[], Awaitable[bytes]]) -> None:
        self._read_secret = read_secret
        self._tokens: PageTokens | None = None

    @classmethod
    def fixed(cls, secret: bytes) -> PageTokenSource:
        """A secret known at startup, checked now rather than at the first request."""
        PageTokens(secret)

        async def configured() -> bytes:
            return secret

        return cls(configured)

    async def tokens(self) -> PageTokens:
        if self._tokens is None:
            self._tokens = PageTokens(await self._read_secret())
        return self._tokens


def int64_key(value: Any, minimum: int = 1) -> int:
    """A page key part that goes to a bigint column: a JSON integer within int64."""
    if type(value) is not int or not minimum <= value <= MAX_INT64:
        raise ValueError(f"not an int64 >= {minimum}: {value!r}")
    return value


def every_page(
    list_rpc: Callable[..., Page], request: Any, *, timeout: float, max_pages: int = 10_000
) -> Iterator[Page]:
    """A caller's walk through a List RPC: each page in turn, the same filters with each
    next_page_token, until the empty token. `request` is not changed; a walk of more than
    `max_pages` pages is an error rather than an endless loop."""
    request = type(request).FromString(request.SerializeToString())
    for _ in range(max_pages):
        page = list_rpc(request, timeout=timeout)
        yield page
        if not page.next_page_token:  # type: ignore[attr-defined]
            return
        request.page_token = page.next_page_token  # type: ignore[attr-defined]
    raise RuntimeError(f"the list did not end within {max_pages} pages")
