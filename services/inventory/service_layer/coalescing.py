"""Group commit: concurrent calls coalesced into batches, one batch in flight at a time.

A call that finds nothing in flight starts a batch of its own at once, so a lone call
waits for nothing. Calls that arrive while a batch is in flight queue, and whatever queued
meanwhile is the next batch (up to a cap): the busier the service, the larger the batches,
and no fixed delay is ever added to wait for company.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Runs one batch: the answer of each call, in the batch's order, as a result or the error
# that call alone raises. Raising fails every call of the batch with that error.
BatchRunner = Callable[[Sequence[T]], Coroutine[Any, Any, Sequence[R | Exception]]]


@dataclass(frozen=True)
class _Waiting(Generic[T, R]):
    call: T
    answer: asyncio.Future[R]
    context: contextvars.Context


class Coalescer(Generic[T, R]):
    """A batch holds at most `max_calls` calls and `max_weight` of their weights (one call
    heavier than that still goes, alone).

    A caller that gives up (cancelled, or its deadline passed) before its batch started is
    left out of it; once its batch started it stays in, and the batch completes for the
    others: only the caller's wait is cancelled, never the batch.
    """

    def __init__(
        self,
        run_batch: BatchRunner[T, R],
        *,
        max_calls: int = 256,
        max_weight: int = 4096,
        weight: Callable[[T], int] = lambda _call: 1,
    ) -> None:
        self._run_batch = run_batch
        self._max_calls = max_calls
        self._max_weight = max_weight
        self._weight = weight
        self._queue: list[_Waiting[T, R]] = []
        self._in_flight: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Calls queued for the next batch (those whose callers gave up included)."""
        return len(self._queue)

    async def call(self, call: T) -> R:
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(call, answer, contextvars.copy_context()))
        if self._in_flight is None:
            self._in_flight = asyncio.create_task(self._fly())
        return await answer

    async def _fly(self) -> None:
        try:
            while self._queue:
                batch = self._next_batch()
                if batch:
                    await self._run(batch)
        except BaseException:
            # Only the server's shutdown cancels this task: nobody is left to run the queue.
            queued, self._queue = self._queue, []
            for waiting in queued:
                waiting.answer.cancel()
            raise
        finally:
            self._in_flight = None

    def _next_batch(self) -> list[_Waiting[T, R]]:
        batch: list[_Waiting[T, R]] = []
        weight = taken = 0
        for waiting in self._queue:
            if len(batch) == self._max_calls:
                break
            if waiting.answer.done():  # its caller gave up before the batch started
                taken += 1
                continue
            weight += self._weight(waiting.call)
            if batch and weight > self._max_weight:
                break
            batch.append(waiting)
            taken += 1
        del self._queue[:taken]
        return batch

    async def _run(self, batch: list[_Waiting[T, R]]) -> None:
        try:
            # In its first caller's context: what the batch does (its statements' spans,
            # say) belongs to a call that waits for it.
            answers: Sequence[R | Exception] = await asyncio.create_task(
                self._run_batch([waiting.call for waiting in batch]), context=batch[0].context
            )
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for a batch of {len(batch)} calls")
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.answer.cancel()
            raise
        except Exception as exc:  # the batch failed as a whole: so does every call in it
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        for waiting, answer in zip(batch, answers, strict=True):
            if waiting.answer.done():
                continue
            if isinstance(answer, Exception):
                waiting.answer.set_exception(answer)
            else:
                waiting.answer.set_result(answer)
