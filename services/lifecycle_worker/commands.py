"""The values a step is run with and answers: the command, its timing, its dependencies,
its result and outcome."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from services.common.lifecycle.ports import (
    OrdersGateway,
    OrderSnapshot,
    ReservationsGateway,
    StepPublisher,
)
from services.common.lifecycle.status import OrderStatus


class StepOutcome(enum.StrEnum):
    """What a step did, as its log line says."""

    ADVANCED = "advanced"
    # Moved, but the next step could not be published: the monitor re-drives it.
    ADVANCED_UNSCHEDULED = "advanced_unscheduled"
    FAILED_NO_STOCK = "failed_insufficient_stock"
    FAILED_UNRESERVABLE = "failed_unreservable"
    # A duplicate or redelivered step: the order was past it already.
    ALREADY_DONE = "already_done"
    # The order had ended (or the status has no step).
    STOPPED = "stopped"
    # The order ended while this step reserved: the reservation was given back.
    RELEASED = "stopped_released_stock"
    RESERVATION_REFUSED = "reservation_refused"
    # The step came before the order reached its status.
    OUT_OF_ORDER = "out_of_order"
    NOT_FOUND = "not_found"
    ERROR = "error"


@dataclass(frozen=True)
class RunStep:
    order_id: str
    expected_status: OrderStatus
    note: str = ""
    # The broker handed this task out before (its worker died holding it): the steps it
    # ran inline after its own may be done and the rest lost with the worker.
    redelivered: bool = False
    # The order as the compare-and-set of the step run just before, in this task, left
    # it: the reserving step then needs no read of its own.
    known_order: OrderSnapshot | None = None


@dataclass(frozen=True)
class StepTiming:
    """The simulated duration of each step, waited out in the broker as a countdown."""

    min_delay_s: float
    max_delay_s: float
    uniform: Callable[[float, float], float] = field(default=random.uniform, compare=False)

    def next_delay(self) -> float:
        return self.uniform(self.min_delay_s, self.max_delay_s)

    @property
    def immediate(self) -> bool:
        return self.max_delay_s <= 0


class StepMetrics(Protocol):
    def step_finished(self, step: OrderStatus, seconds: float) -> None:
        """One step (named by the status it starts from) ran, whatever its outcome."""


class NoStepMetrics:
    """Metrics off (WORKER_METRICS_ADDR empty): nothing is measured."""

    def step_finished(self, step: OrderStatus, seconds: float) -> None:
        pass


@dataclass(frozen=True)
class StepDependencies:
    orders: OrdersGateway
    reservations: ReservationsGateway
    publisher: StepPublisher
    timing: StepTiming
    metrics: StepMetrics = field(default_factory=NoStepMetrics)


@dataclass(frozen=True)
class StepResult:
    outcome: StepOutcome
    # The status the order was left in (None when it does not exist).
    status: OrderStatus | None
    note: str = ""
    next_delay_s: float | None = None
    # The next step is due now: run it in this task rather than publish it.
    run_next_inline: bool = False
    order: OrderSnapshot | None = None
