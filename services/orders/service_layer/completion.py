"""Work that must not stop half-way when the caller goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# The event loop keeps only weak references to tasks; these must live until they finish.
_running: set[asyncio.Task[Any]] = set()


async def run_to_completion(work: Coroutine[Any, Any, T]) -> T:
    """Await `work`, but let it finish even if our caller is cancelled (a client that hung
    up): a transaction that committed then still gets its follow-up (a task published, a
    reservation released) instead of leaving it to a later sweep."""
    task = asyncio.ensure_future(work)
    _running.add(task)
    task.add_done_callback(_running.discard)
    return await asyncio.shield(task)
