"""BulkCreateOrders: a stream of requests in, one result per request out, in order.

The stream is read by a separate task into a bounded queue (so a slow database pushes back
on the client through gRPC flow control), and processed in batches of whatever has arrived,
up to `bulk_batch_size`: one validation pass, one inventory lookup and one transaction per
batch. Each batch is committed as a whole or not at all; a client that hangs up keeps every
order it was told about, and a batch already committing is finished (see intake.py).
Requests past `bulk_max_items` are not processed and each get BulkLimitExceeded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from services.common.errors import DomainError
from services.orders.domain.callers import Caller
from services.orders.domain.errors import BulkLimitExceeded
from services.orders.domain.order_requests import OrderRequest
from services.orders.service_layer.dependencies import OrderServiceDeps
from services.orders.service_layer.intake import Outcome, take_orders


@dataclass(frozen=True)
class BulkResult:
    index: int
    request_id: str
    outcome: Outcome


class _EndOfStream:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def bulk_create_orders(
    requests: AsyncIterator[OrderRequest], caller: Caller, deps: OrderServiceDeps
) -> AsyncIterator[BulkResult]:
    queue: asyncio.Queue[OrderRequest | _EndOfStream] = asyncio.Queue(
        maxsize=2 * deps.bulk_batch_size
    )
    reader = asyncio.create_task(_read_into(requests, queue))
    try:
        next_index = 0
        while True:
            batch, ended = await _next_batch(queue, deps.bulk_batch_size)
            within_limit = max(0, min(len(batch), deps.bulk_max_items - next_index))
            outcomes: list[Outcome] = []
            created = 0
            if within_limit:
                intake = await take_orders(batch[:within_limit], caller, deps)
                outcomes, created = intake.outcomes, intake.created
            outcomes += [BulkLimitExceeded(deps.bulk_max_items)] * (len(batch) - within_limit)
            rejected = sum(isinstance(outcome, DomainError) for outcome in outcomes)
            deps.metrics.bulk_items(created, len(outcomes) - rejected - created, rejected)
            for request, outcome in zip(batch, outcomes, strict=True):
                yield BulkResult(next_index, request.request_id, outcome)
                next_index += 1
            if ended is not None:
                if ended.error is not None:
                    raise ended.error
                return
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _read_into(
    requests: AsyncIterator[OrderRequest], queue: asyncio.Queue[OrderRequest | _EndOfStream]
) -> None:
    try:
        async for request in requests:
            await queue.put(request)
    except Exception as exc:
        await queue.put(_EndOfStream(exc))
    else:
        await queue.put(_EndOfStream())


async def _next_batch(
    queue: asyncio.Queue[OrderRequest | _EndOfStream], size: int
) -> tuple[list[OrderRequest], _EndOfStream | None]:
    """Wait for one request, then take whatever else has already arrived, up to `size`."""
    batch: list[OrderRequest] = []
    item = await queue.get()
    while True:
        if isinstance(item, _EndOfStream):
            return batch, item
        batch.append(item)
        if len(batch) >= size or queue.empty():
            return batch, None
        item = queue.get_nowait()
