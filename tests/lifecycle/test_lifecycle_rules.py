"""Unit tests: the lifecycle rules of advance_order, on in-memory fakes (no servers)."""

from __future__ import annotations

import pytest

from services.common.lifecycle.ports import OrderItem, OrderSnapshot, Shortfall
from services.common.lifecycle.status import NON_TERMINAL, NORMAL_PATH, OrderStatus, next_on_normal_path
from services.common.lifecycle.timing import STEP_DUE_MARGIN_S
from services.lifecycle_worker import domain
from services.lifecycle_worker.commands import (
    RunStep,
    StepDependencies,
    StepOutcome,
    StepResult,
    StepTiming,
)
from services.lifecycle_worker.service import advance_order
from tests.lifecycle.fakes import FakeOrders, FakePublisher, FakeReservations

pytestmark = pytest.mark.unit


@pytest.fixture
def orders() -> FakeOrders:
    return FakeOrders()


@pytest.fixture
def reservations() -> FakeReservations:
    return FakeReservations(stock={12: 5, 14: 1})


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def deps(
    orders: FakeOrders, reservations: FakeReservations, publisher: FakePublisher
) -> StepDependencies:
    return StepDependencies(orders, reservations, publisher, StepTiming(1.0, 3.0, lambda a, b: 2.5))


def run(
    deps: StepDependencies, order_id: str, status: OrderStatus, note: str = ""
) -> StepResult:
    return advance_order(RunStep(order_id, status, note), deps)


def statuses(orders: FakeOrders, order_id: str) -> list[str]:
    return [to for _, to, _ in orders.history[order_id]]


def test_pending_step_moves_to_processing_and_schedules_next_step_after_its_delay(
    deps: StepDependencies, orders: FakeOrders, publisher: FakePublisher
) -> None:
    orders.add("o1", [OrderItem(12, 1)])

    result = run(deps, "o1", OrderStatus.PENDING)

    assert (result.outcome, result.status) == (StepOutcome.ADVANCED, OrderStatus.PROCESSING)
    assert publisher.published == [("o1", OrderStatus.PROCESSING, 2.5, "")]
    assert orders.due_in["o1"] == 2.5 + STEP_DUE_MARGIN_S


def test_processing_step_reserves_stock_and_moves_to_packaging(
    deps: StepDependencies, orders: FakeOrders, reservations: FakeReservations
) -> None:
    orders.add("o1", [OrderItem(12, 3)], status=OrderStatus.PROCESSING)

    result = run(deps, "o1", OrderStatus.PROCESSING)

    assert result.status == OrderStatus.PACKAGING
    assert reservations.stock[12] == 2


def test_walking_every_published_step_delivers_with_a_complete_history(
    deps: StepDependencies, orders: FakeOrders, publisher: FakePublisher
) -> None:
    orders.add("o1", [OrderItem(12, 2), OrderItem(14, 1)])
    run(deps, "o1", OrderStatus.PENDING)
    for _ in range(len(NORMAL_PATH) + 1):
        if not publisher.published:
            break
        order_id, status, _, _ = publisher.published.pop(0)
        run(deps, order_id, status)
    assert publisher.published == [], "steps kept being published past the end of the path"

    assert statuses(orders, "o1") == list(NORMAL_PATH)


def test_shortfall_fails_the_order_with_a_note_naming_every_short_product(
    deps: StepDependencies, orders: FakeOrders, reservations: FakeReservations,
    publisher: FakePublisher,
) -> None:
    reservations.stock = {12: 1, 13: 10, 14: 0}
    orders.add("o1", [OrderItem(14, 1), OrderItem(13, 2), OrderItem(12, 3)], status=OrderStatus.PROCESSING)

    result = run(deps, "o1", OrderStatus.PROCESSING)

    expected_note = (
        "insufficient stock: product 12 requested 3, available 1; "
        "product 14 requested 1, available 0"
    )
    assert (result.outcome, result.status) == (StepOutcome.FAILED_NO_STOCK, OrderStatus.FAILED)
    assert orders.history["o1"][-1] == (OrderStatus.PROCESSING, OrderStatus.FAILED, expected_note)
    assert reservations.stock == {12: 1, 13: 10, 14: 0}
    assert publisher.published == []


def test_redelivered_step_changes_nothing_twice(
    deps: StepDependencies, orders: FakeOrders, reservations: FakeReservations,
    publisher: FakePublisher,
) -> None:
    orders.add("o1", [OrderItem(12, 2)], status=OrderStatus.PROCESSING)

    first = run(deps, "o1", OrderStatus.PROCESSING)
    second = run(deps, "o1", OrderStatus.PROCESSING)

    assert first.outcome == StepOutcome.ADVANCED
    assert second.outcome == StepOutcome.ALREADY_DONE
    assert statuses(orders, "o1") == [OrderStatus.PROCESSING, OrderStatus.PACKAGING]
    assert reservations.stock[12] == 3
    assert len(publisher.published) == 1


def test_duplicate_that_loses_the_compare_and_set_does_not_schedule_again(
    deps: StepDependencies, orders: FakeOrders, reservations: FakeReservations,
    publisher: FakePublisher,
) -> None:
    orders.add("o1", [OrderItem(12, 2)], status=OrderStatus.PROCESSING)
    # The twin task advances the order between our read and our compare-and-set.
    reservations.on_reserve = lambda order_id: orders.set_status(order_id, OrderStatus.PACKAGING)

    result = run(deps, "o1", OrderStatus.PROCESSING)

    assert result.outcome == StepOutcome.ALREADY_DONE
    assert publisher.published == []
    assert reservations.stock[12] == 3


def test_order_canceled_while_reserving_gets_its_stock_back(
    deps: StepDependencies, orders: FakeOrders, reservations: FakeReservations,
    publisher: FakePublisher,
) -> None:
    orders.add("o1", [OrderItem(12, 4)], status=OrderStatus.PROCESSING)
    reservations.on_reserve = lambda order_id: orders.set_status(order_id, OrderStatus.CANCELED)

    result = run(deps, "o1", OrderStatus.PROCESSING)

    assert (result.outcome, result.status) == (StepOutcome.RELEASED, OrderStatus.CANCELED)
    assert reservations.stock[12] == 5
    assert publisher.published == []


@pytest.mark.parametrize("status", NON_TERMINAL)
@pytest.mark.parametrize("terminal", [OrderStatus.CANCELED, OrderStatus.FAILED])
def test_step_that_finds_the_order_ended_stops(
    deps: StepDependencies, orders: FakeOrders, reservations: FakeReservations,
    publisher: FakePublisher, status: str, terminal: str,
) -> None:
    orders.add("o1", [OrderItem(12, 1)], status=terminal)

    result = run(deps, "o1", status)

    assert (result.outcome, result.status) == (StepOutcome.STOPPED, terminal)
    assert reservations.reserve_calls == 0
    assert publisher.published == []


def test_reservation_refused_after_a_release_stops_without_a_transition(
    deps: StepDependencies, orders: FakeOrders, reservations: FakeReservations
) -> None:
    orders.add("o1", [OrderItem(12, 1)], status=OrderStatus.PROCESSING)
    reservations.released.add("o1")

    result = run(deps, "o1", OrderStatus.PROCESSING)

    assert result.outcome == StepOutcome.RESERVATION_REFUSED
    assert statuses(orders, "o1") == [OrderStatus.PROCESSING]


def test_step_scheduled_ahead_of_the_order_does_nothing(
    deps: StepDependencies, orders: FakeOrders
) -> None:
    orders.add("o1", [OrderItem(12, 1)], status=OrderStatus.PENDING)

    assert run(deps, "o1", OrderStatus.SHIPPED).outcome == StepOutcome.OUT_OF_ORDER
    assert statuses(orders, "o1") == [OrderStatus.PENDING]


def test_last_step_delivers_and_schedules_nothing(
    deps: StepDependencies, orders: FakeOrders, publisher: FakePublisher
) -> None:
    orders.add("o1", [OrderItem(12, 1)], status=OrderStatus.SHIPPED)

    assert run(deps, "o1", OrderStatus.SHIPPED).status == OrderStatus.DELIVERED
    assert run(deps, "o1", OrderStatus.DELIVERED).outcome == StepOutcome.STOPPED
    assert publisher.published == []


def test_broker_down_after_a_transition_leaves_the_order_for_the_monitor(
    deps: StepDependencies, orders: FakeOrders, publisher: FakePublisher
) -> None:
    orders.add("o1", [OrderItem(12, 1)])
    publisher.broken = True

    result = run(deps, "o1", OrderStatus.PENDING)

    assert (result.outcome, result.status) == (StepOutcome.ADVANCED_UNSCHEDULED, OrderStatus.PROCESSING)
    assert orders.due_in["o1"] > 0


def test_unknown_order_is_reported_not_found(deps: StepDependencies) -> None:
    assert run(deps, "missing", OrderStatus.PENDING).outcome == StepOutcome.NOT_FOUND


def test_redriven_step_records_the_redrive_in_its_transition_note(
    deps: StepDependencies, orders: FakeOrders, reservations: FakeReservations
) -> None:
    reservations.stock = {12: 0}
    orders.add("o1", [OrderItem(12, 1)], status=OrderStatus.PROCESSING)
    orders.add("o2", [OrderItem(14, 1)], status=OrderStatus.PACKAGING)

    run(deps, "o1", OrderStatus.PROCESSING, note="re-drive attempt 1 of 2")
    run(deps, "o2", OrderStatus.PACKAGING, note="re-drive attempt 2 of 2")

    assert orders.history["o1"][-1][2] == (
        "insufficient stock: product 12 requested 1, available 0 (re-drive attempt 1 of 2)"
    )
    assert orders.history["o2"][-1] == (OrderStatus.PACKAGING, OrderStatus.SHIPPED, "re-drive attempt 2 of 2")


def test_zero_delays_run_every_next_step_in_the_same_task(
    orders: FakeOrders, reservations: FakeReservations, publisher: FakePublisher
) -> None:
    reads: list[str] = []

    class CountedReads(FakeOrders):
        def get_order(self, order_id: str) -> OrderSnapshot:
            reads.append(order_id)
            return super().get_order(order_id)

    orders = CountedReads()
    deps = StepDependencies(orders, reservations, publisher, StepTiming(0.0, 0.0))
    orders.add("o1", [OrderItem(12, 1)])

    result = run(deps, "o1", OrderStatus.PENDING)

    assert (result.outcome, result.status) == (StepOutcome.ADVANCED, OrderStatus.DELIVERED)
    assert statuses(orders, "o1") == list(NORMAL_PATH)
    assert reservations.stock[12] == 4
    assert publisher.published == []
    # The reserving step took the items from the compare-and-set just before it.
    assert reads == []


def test_zero_delays_send_the_steps_after_reserving_in_one_call(
    orders: FakeOrders, reservations: FakeReservations, publisher: FakePublisher
) -> None:
    calls: list[tuple[str, str, tuple[str, ...]]] = []

    class CountedAdvances(FakeOrders):
        def advance_order(self, order_id, expected_status, to_status, note, due, then_statuses=()):
            calls.append((expected_status, to_status, tuple(then_statuses)))
            return super().advance_order(order_id, expected_status, to_status, note, due, then_statuses)

    orders = CountedAdvances()
    deps = StepDependencies(orders, reservations, publisher, StepTiming(0.0, 0.0))
    orders.add("o1", [OrderItem(12, 1)])

    result = run(deps, "o1", OrderStatus.PENDING)

    assert (result.outcome, result.status) == (StepOutcome.ADVANCED, OrderStatus.DELIVERED)
    assert result.note == "then SHIPPED, DELIVERED"
    # PROCESSING must reserve first, so it is reached on its own; the rest in one call.
    assert calls == [
        (OrderStatus.PENDING, OrderStatus.PROCESSING, ()),
        (OrderStatus.PROCESSING, OrderStatus.PACKAGING, (OrderStatus.SHIPPED, OrderStatus.DELIVERED)),
    ]
    assert statuses(orders, "o1") == list(NORMAL_PATH)


def test_a_run_of_steps_that_finds_the_order_canceled_stops_there(
    orders: FakeOrders, reservations: FakeReservations, publisher: FakePublisher
) -> None:
    deps = StepDependencies(orders, reservations, publisher, StepTiming(0.0, 0.0))
    orders.add("o1", [OrderItem(12, 1)])
    orders.cancel_before = OrderStatus.SHIPPED

    result = run(deps, "o1", OrderStatus.PENDING)

    assert (result.outcome, result.status) == (StepOutcome.STOPPED, OrderStatus.CANCELED)
    assert statuses(orders, "o1") == [*NORMAL_PATH[:3], OrderStatus.CANCELED]
    assert publisher.published == []


def test_steps_are_sent_together_only_when_no_step_takes_time(
    deps: StepDependencies, orders: FakeOrders, publisher: FakePublisher
) -> None:
    orders.add("o1", [OrderItem(12, 1)], status=OrderStatus.PACKAGING)

    result = run(deps, "o1", OrderStatus.PACKAGING)

    assert (result.status, result.note) == (OrderStatus.SHIPPED, "")
    assert publisher.published == [("o1", OrderStatus.SHIPPED, 2.5, "")]


def test_steps_without_reserving_stop_before_the_reserving_step_and_at_the_end() -> None:
    assert domain.steps_without_reserving(OrderStatus.PENDING) == (OrderStatus.PROCESSING,)
    assert domain.steps_without_reserving(OrderStatus.PROCESSING) == ()
    assert domain.steps_without_reserving(OrderStatus.PACKAGING) == NORMAL_PATH[3:]
    assert domain.steps_without_reserving(OrderStatus.DELIVERED) == ()


def test_zero_delays_inline_steps_stop_at_a_shortfall(
    orders: FakeOrders, reservations: FakeReservations, publisher: FakePublisher
) -> None:
    deps = StepDependencies(orders, reservations, publisher, StepTiming(0.0, 0.0))
    orders.add("o1", [OrderItem(14, 2)])

    result = run(deps, "o1", OrderStatus.PENDING)

    assert (result.outcome, result.status) == (StepOutcome.FAILED_NO_STOCK, OrderStatus.FAILED)
    assert statuses(orders, "o1") == [OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.FAILED]
    assert publisher.published == []


def test_duplicate_with_zero_delays_changes_nothing_and_goes_no_further(
    orders: FakeOrders, reservations: FakeReservations, publisher: FakePublisher
) -> None:
    deps = StepDependencies(orders, reservations, publisher, StepTiming(0.0, 0.0))
    orders.add("o1", [OrderItem(12, 1)], status=OrderStatus.PACKAGING)

    result = run(deps, "o1", OrderStatus.PENDING)

    assert (result.outcome, result.status) == (StepOutcome.ALREADY_DONE, OrderStatus.PACKAGING)
    assert statuses(orders, "o1") == [OrderStatus.PACKAGING]


def test_redelivered_task_with_zero_delays_finishes_the_steps_its_dead_worker_lost(
    orders: FakeOrders, reservations: FakeReservations, publisher: FakePublisher
) -> None:
    deps = StepDependencies(orders, reservations, publisher, StepTiming(0.0, 0.0))
    # The worker died after running PENDING and PROCESSING inline (stock held).
    orders.add("o1", [OrderItem(12, 1)], status=OrderStatus.PACKAGING)
    reservations.reserve_stock("o1", [OrderItem(12, 1)])

    result = advance_order(RunStep("o1", OrderStatus.PENDING, redelivered=True), deps)

    assert (result.outcome, result.status) == (StepOutcome.ADVANCED, OrderStatus.DELIVERED)
    assert statuses(orders, "o1") == [OrderStatus.PACKAGING, OrderStatus.SHIPPED, OrderStatus.DELIVERED]
    assert reservations.stock[12] == 4


def test_redelivered_task_with_delays_leaves_the_published_next_step_to_run(
    deps: StepDependencies, orders: FakeOrders, publisher: FakePublisher
) -> None:
    orders.add("o1", [OrderItem(12, 1)], status=OrderStatus.PACKAGING)

    result = advance_order(RunStep("o1", OrderStatus.PENDING, redelivered=True), deps)

    assert (result.outcome, result.status) == (StepOutcome.ALREADY_DONE, OrderStatus.PACKAGING)
    assert statuses(orders, "o1") == [OrderStatus.PACKAGING]
    assert publisher.published == []


def test_shortfall_note_lists_products_in_id_order_and_admits_unknown_availability() -> None:
    note = domain.shortfall_note([Shortfall(14, 1, 0), Shortfall(12, 3, None)])

    assert note == (
        "insufficient stock: product 12 requested 3, available unknown; "
        "product 14 requested 1, available 0"
    )


def test_next_status_follows_the_normal_path_only() -> None:
    assert [next_on_normal_path(s) for s in NORMAL_PATH] == [
        OrderStatus.PROCESSING, OrderStatus.PACKAGING, OrderStatus.SHIPPED, OrderStatus.DELIVERED, None
    ]
    assert next_on_normal_path(OrderStatus.CANCELED) is None
    assert next_on_normal_path(OrderStatus.FAILED) is None
