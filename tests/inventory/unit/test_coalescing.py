"""Group commit's batching rules: who goes in which batch, and what each caller hears."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import pytest

from services.inventory.service_layer.coalescing import Coalescer

pytestmark = pytest.mark.unit

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=10))


class GatedRunner:
    """Runs batches of ints, answering each with its double; each batch waits for the
    test to open its gate, so the test decides what arrives while one is in flight."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gates: list[asyncio.Event] = []
        self.failure: Exception | None = None
        self._started = asyncio.Condition()

    async def __call__(self, calls: Sequence[int]) -> list[int | Exception]:
        gate = asyncio.Event()
        self.batches.append(list(calls))
        self.gates.append(gate)
        async with self._started:
            self._started.notify_all()
        await gate.wait()
        if self.failure is not None:
            raise self.failure
        return [ValueError(f"odd {c}") if c % 2 else c * 2 for c in calls]

    async def in_flight(self, count: int) -> None:
        """Until the count-th batch has started."""
        async with self._started:
            await self._started.wait_for(lambda: len(self.batches) >= count)

    def open(self, number: int) -> None:
        self.gates[number - 1].set()


async def until(predicate: Callable[[], bool]) -> None:
    """Until tasks just created have run to their first wait (the queue offers no event)."""
    while not predicate():  # noqa: ASYNC110
        await asyncio.sleep(0)


def test_a_lone_call_runs_at_once_in_a_batch_of_its_own() -> None:
    async def scenario() -> tuple[list[list[int]], int]:
        runner = GatedRunner()
        batches = Coalescer(runner)
        call = asyncio.create_task(batches.call(4))
        await runner.in_flight(1)
        runner.open(1)
        return runner.batches, await call

    assert run(scenario) == ([[4]], 8)


def test_calls_arriving_during_a_batch_form_the_next_one_in_arrival_order() -> None:
    async def scenario() -> tuple[list[list[int]], list[int]]:
        runner = GatedRunner()
        batches = Coalescer(runner)
        first = asyncio.create_task(batches.call(2))
        await runner.in_flight(1)
        later = [asyncio.create_task(batches.call(n)) for n in (10, 6, 8)]
        await until(lambda: batches.waiting == 3)
        runner.open(1)
        await runner.in_flight(2)
        runner.open(2)
        return runner.batches, [await first, *[await task for task in later]]

    assert run(scenario) == ([[2], [10, 6, 8]], [4, 20, 12, 16])


def test_each_caller_hears_its_own_error_and_the_others_their_results() -> None:
    async def scenario() -> list[object]:
        runner = GatedRunner()
        batches = Coalescer(runner)
        calls = [asyncio.create_task(batches.call(n)) for n in (2, 3, 4)]
        await runner.in_flight(1)
        runner.open(1)
        return list(await asyncio.gather(*calls, return_exceptions=True))

    two, three, four = run(scenario)
    assert (two, four) == (4, 8)
    assert isinstance(three, ValueError) and str(three) == "odd 3"


def test_a_batch_that_fails_fails_every_caller_in_it_and_only_them() -> None:
    async def scenario() -> tuple[list[object], list[object]]:
        runner = GatedRunner()
        batches = Coalescer(runner)
        failing = [asyncio.create_task(batches.call(n)) for n in (2, 4)]
        await runner.in_flight(1)
        following = [asyncio.create_task(batches.call(6))]
        await until(lambda: batches.waiting == 1)
        runner.failure = ConnectionError("connection lost")
        runner.open(1)
        failed = await asyncio.gather(*failing, return_exceptions=True)
        runner.failure = None
        await runner.in_flight(2)
        runner.open(2)
        return list(failed), list(await asyncio.gather(*following, return_exceptions=True))

    failed, following = run(scenario)
    assert all(isinstance(f, ConnectionError) for f in failed), failed
    assert following == [12]


def test_batches_are_capped_by_calls_and_by_weight() -> None:
    async def scenario() -> list[list[int]]:
        runner = GatedRunner()
        batches = Coalescer(runner, max_calls=3, max_weight=10, weight=lambda n: n)
        calls = [asyncio.create_task(batches.call(n)) for n in (2, 2, 2, 2, 4, 6, 12, 2)]
        for number in range(1, 6):
            await runner.in_flight(number)
            runner.open(number)
        await asyncio.gather(*calls)
        return runner.batches

    # Three calls at most; 2 + 4 + 6 and 6 + 12 would weigh more than 10; 12 alone is too
    # heavy for any batch and still goes, on its own.
    assert run(scenario) == [[2, 2, 2], [2, 4], [6], [12], [2]]


def test_a_caller_who_gives_up_before_its_batch_starts_is_left_out() -> None:
    async def scenario() -> tuple[list[list[int]], list[int]]:
        runner = GatedRunner()
        batches = Coalescer(runner)
        first = asyncio.create_task(batches.call(2))
        await runner.in_flight(1)
        later = {n: asyncio.create_task(batches.call(n)) for n in (4, 6, 8)}
        await until(lambda: batches.waiting == 3)
        later[6].cancel()
        runner.open(1)
        await runner.in_flight(2)
        runner.open(2)
        return runner.batches, [await first, await later[4], await later[8]]

    assert run(scenario) == ([[2], [4, 8]], [4, 8, 16])


def test_a_caller_who_gives_up_during_its_batch_does_not_cancel_it_for_the_others() -> None:
    async def scenario() -> tuple[list[list[int]], list[int], bool]:
        runner = GatedRunner()
        batches = Coalescer(runner)
        calls = {n: asyncio.create_task(batches.call(n)) for n in (2, 4, 6)}
        await runner.in_flight(1)
        calls[4].cancel()
        with pytest.raises(asyncio.CancelledError):
            await calls[4]
        runner.open(1)
        return runner.batches, [await calls[2], await calls[6]], calls[4].cancelled()

    assert run(scenario) == ([[2, 4, 6]], [4, 12], True)


def test_nothing_stays_in_flight_once_the_queue_is_empty() -> None:
    async def scenario() -> list[list[int]]:
        runner = GatedRunner()
        batches = Coalescer(runner)
        for number, value in enumerate((2, 4), start=1):
            call = asyncio.create_task(batches.call(value))
            await runner.in_flight(number)
            runner.open(number)
            await call
        # After a quiet moment the next call again goes alone, at once.
        return runner.batches

    assert run(scenario) == [[2], [4]]


CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="nobody")


def test_each_batch_runs_in_the_context_of_its_first_caller() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []
        runner = GatedRunner()

        async def noting_caller(calls: Sequence[int]) -> list[int | Exception]:
            seen.append(CALLER.get())
            return await runner(calls)

        batches = Coalescer(noting_caller)

        async def call_as(name: str, value: int) -> int:
            CALLER.set(name)
            return await batches.call(value)

        first = asyncio.create_task(call_as("first", 2))
        await runner.in_flight(1)
        later = [asyncio.create_task(call_as(name, 4)) for name in ("second", "third")]
        await until(lambda: batches.waiting == 2)
        runner.open(1)
        await runner.in_flight(2)
        runner.open(2)
        await asyncio.gather(first, *later)
        return seen

    # The second batch belongs to its own first caller, not to whoever started the first.
    assert run(scenario) == ["first", "second"]
