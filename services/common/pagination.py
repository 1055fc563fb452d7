"""AIP-158 pagination: page sizes and opaque keyset page tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from services.common.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_MAX_TOKEN_LENGTH = 1024

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


def encode_page_token(kind: str, last_key: list[Any], filters: dict[str, Any] | None = None) -> str:
    """An opaque token holding the last row's sort key (keyset pagination)."""
    body = {"k": kind, "v": last_key, "f": _fingerprint(filters or {})}
    raw = json.dumps(body, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(
    token: str,
    kind: str,
    filters: dict[str, Any] | None = None,
    parse: Callable[[list[Any]], Key] | None = None,
) -> Key | list[Any] | None:
    """The sort key after which the next page starts, or None for the first page.

    `parse` turns the key into what the caller pages by; a key it cannot read (raises
    anything) is a token this API never issued, refused like any other altered token
    rather than left to reach SQL.
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
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if (
        not isinstance(body, dict)
        or body.get("k") != kind
        or body.get("f") != _fingerprint(filters or {})
        or not isinstance(body.get("v"), list)
    ):
        raise bad
    if parse is None:
        return body["v"]
    try:
        return parse(body["v"])
    except Exception:
        raise bad from None


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
