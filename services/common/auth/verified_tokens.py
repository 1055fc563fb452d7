"""Tokens this process has verified already, so that a caller presenting the same token
again costs a lookup instead of a signature check.

Checking an ES256 signature costs ~140 us of CPU here, about what a whole unary RPC costs
the server otherwise, and most calls repeat a token: the service callers present theirs
for minutes, and clients reuse theirs. Only the exact token string that passed every
check is remembered, and a remembered token is judged again in full once it expires, the
key set it was verified against changes, or that key set is due for a re-read (so a key
the issuer withdrew stops being trusted as soon as it would without this memory).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from services.common.auth.key_set import KeySet
from services.common.auth.principal import Principal

MAX_REMEMBERED = 4096


class _Verified(NamedTuple):
    principal: Principal
    kid: str | None
    valid_until: float  # exp plus the leeway, as the full check would count it
    generation: int  # of the key set it was verified against


class VerifiedTokens:
    def __init__(
        self, max_size: int = MAX_REMEMBERED, clock: Callable[[], float] = time.time
    ) -> None:
        self._max_size = max_size
        self._clock = clock
        self._entries: dict[str, _Verified] = {}
        self._lock = threading.Lock()

    def recall(self, token: str, keys: KeySet) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if (
            entry.generation != keys.generation
            or self._clock() >= entry.valid_until
            or keys.refresh_due(entry.kid)
        ):
            with self._lock:
                self._entries.pop(token, None)
            return None
        return entry.principal

    def remember(
        self, token: str, principal: Principal, kid: str | None, valid_until: float, generation: int
    ) -> None:
        with self._lock:
            if len(self._entries) >= self._max_size:
                # The oldest first (dicts keep insertion order): it expires soonest, roughly.
                del self._entries[next(iter(self._entries))]
            self._entries[token] = _Verified(principal, kid, valid_until, generation)
