"""Unit tests: what a sweep does with the orders it claims, on in-memory fakes."""

from __future__ import annotations

import pytest

from services.common.lifecycle.health import LifecycleLag
from services.common.lifecycle.ports import OrderItem, StaleOrder
from services.common.lifecycle.status import OrderStatus
from services.stale_monitor import domain as stale_rules
from services.stale_monitor.service import (
    MonitorDependencies,
    RememberedLag,
    SweepPolicy,
    sweep_stale_orders,
)
from tests.lifecycle.fakes import FakeLifecycle, FakeOrders, FakePublisher, FakeReservations

pytestmark = pytest.mark.unit

POLICY = SweepPolicy(stale_after_s=60.0, lease_s=4.0, retries=2, batch_limit=3)


@pytest.fixture
def orders() -> FakeOrders:
    return FakeOrders()


@pytest.fixture
def reservations() -> FakeReservations:
    return FakeReservations(stock={7: 10})


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def lifecycle() -> FakeLifecycle:
    return FakeLifecycle()


@pytest.fixture
def deps(
    orders: FakeOrders, reservations: FakeReservations, publisher: FakePublisher,
    lifecycle: FakeLifecycle,
) -> MonitorDependencies:
    return MonitorDependencies(orders, reservations, publisher, lifecycle)


def claim(orders: FakeOrders, order_id: str, claims: int) -> StaleOrder:
    return StaleOrder(orders.get_order(order_id), claims)


def test_stale_step_is_redriven_with_its_attempt_number(
    deps: MonitorDependencies, orders: FakeOrders, publisher: FakePublisher
) -> None:
    orders.add("o1", [OrderItem(7, 1)], status=OrderStatus.PACKAGING)
    orders.stale_batches = [[claim(orders, "o1", 1)]]

    report = sweep_stale_orders(deps, POLICY)

    assert report.redriven == 1
    assert publisher.published == [("o1", OrderStatus.PACKAGING, 0.0, "re-drive attempt 1 of 2")]
    assert orders.claims == [(3, 60.0, 4.0)]
    assert orders.status("o1") == OrderStatus.PACKAGING


def test_step_overdue_after_the_last_redrive_fails_the_order_and_releases_its_stock(
    deps: MonitorDependencies, orders: FakeOrders, reservations: FakeReservations,
    publisher: FakePublisher,
) -> None:
    orders.add("o1", [OrderItem(7, 4)], status=OrderStatus.PROCESSING)
    reservations.reserve_stock("o1", [OrderItem(7, 4)])
    orders.set_status("o1", OrderStatus.PACKAGING)
    orders.stale_batches = [[claim(orders, "o1", 3)]]

    report = sweep_stale_orders(deps, POLICY)

    assert report.failed == 1
    assert orders.history["o1"][-1] == (
        OrderStatus.PACKAGING, OrderStatus.FAILED, "stale: step PACKAGING overdue after 2 re-drives"
    )
    assert reservations.stock[7] == 10
    assert publisher.published == []


def test_zero_retries_fail_a_stale_order_at_once(
    deps: MonitorDependencies, orders: FakeOrders
) -> None:
    orders.add("o1", [OrderItem(7, 1)], status=OrderStatus.PENDING)
    orders.stale_batches = [[claim(orders, "o1", 1)]]

    sweep_stale_orders(deps, SweepPolicy(60.0, 4.0, retries=0))

    assert orders.status("o1") == OrderStatus.FAILED


def test_order_that_moved_on_since_the_claim_is_left_alone(
    deps: MonitorDependencies, orders: FakeOrders, reservations: FakeReservations
) -> None:
    orders.add("o1", [OrderItem(7, 2)], status=OrderStatus.PROCESSING)
    reservations.reserve_stock("o1", [OrderItem(7, 2)])
    stale = claim(orders, "o1", 3)
    orders.set_status("o1", OrderStatus.PACKAGING)
    orders.set_status("o1", OrderStatus.SHIPPED)
    orders.stale_batches = [[stale]]

    report = sweep_stale_orders(deps, POLICY)

    assert report.moved_on == 1
    assert orders.status("o1") == OrderStatus.SHIPPED
    assert reservations.stock[7] == 8


def test_sweep_claims_batches_until_one_comes_back_short(
    deps: MonitorDependencies, orders: FakeOrders, publisher: FakePublisher
) -> None:
    for n in range(5):
        orders.add(f"o{n}", [OrderItem(7, 1)])
    orders.stale_batches = [
        [claim(orders, f"o{n}", 1) for n in range(3)],
        [claim(orders, f"o{n}", 1) for n in range(3, 5)],
        [claim(orders, "o0", 2)],
    ]

    report = sweep_stale_orders(deps, POLICY)

    assert (report.claimed, report.redriven) == (5, 5)
    assert len(orders.claims) == 2


def test_stop_request_ends_the_sweep_after_the_batch_in_hand(
    deps: MonitorDependencies, orders: FakeOrders
) -> None:
    for n in range(6):
        orders.add(f"o{n}", [OrderItem(7, 1)])
    orders.stale_batches = [
        [claim(orders, f"o{n}", 1) for n in range(3)],
        [claim(orders, f"o{n}", 1) for n in range(3, 6)],
    ]

    report = sweep_stale_orders(deps, POLICY, should_stop=lambda: True)

    assert report.redriven == 3
    assert len(orders.claims) == 1


def test_broker_down_is_counted_and_the_sweep_goes_on(
    deps: MonitorDependencies, orders: FakeOrders, publisher: FakePublisher
) -> None:
    orders.add("o1", [OrderItem(7, 1)])
    orders.add("o2", [OrderItem(7, 1)], status=OrderStatus.SHIPPED)
    publisher.broken = True
    orders.stale_batches = [[claim(orders, "o1", 1), claim(orders, "o2", 3)]]

    report = sweep_stale_orders(deps, POLICY)

    assert (report.errors, report.failed) == (1, 1)
    assert orders.status("o2") == OrderStatus.FAILED


def test_a_backlog_is_not_staleness_the_lag_widens_the_claim_and_the_lease(
    deps: MonitorDependencies, orders: FakeOrders, lifecycle: FakeLifecycle
) -> None:
    lifecycle.lag = LifecycleLag(live_workers=1, queue_length=9000, lag_s=120.0)

    sweep_stale_orders(deps, POLICY)

    assert orders.claims == [(3, 60.0 + 120.0, 4.0 + 120.0)]


def test_with_no_live_worker_nothing_is_claimed_redriven_or_failed(
    deps: MonitorDependencies, orders: FakeOrders, lifecycle: FakeLifecycle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    orders.add("o1", [OrderItem(7, 1)])
    orders.stale_batches = [[claim(orders, "o1", 3)]]
    lifecycle.lag = LifecycleLag(live_workers=0, queue_length=40, lag_s=0.0)

    report = sweep_stale_orders(deps, POLICY)

    assert (report.skipped, report.claimed) == ("no_live_worker", 0)
    assert orders.claims == []
    assert orders.status("o1") == OrderStatus.PENDING
    stalled = [r for r in caplog.records if r.getMessage() == "lifecycle_stalled"]
    assert stalled and stalled[0].fields["queue_length"] == 40  # type: ignore[attr-defined]


def test_an_unreadable_broker_skips_the_sweep(
    deps: MonitorDependencies, orders: FakeOrders, lifecycle: FakeLifecycle
) -> None:
    orders.add("o1", [OrderItem(7, 1)])
    orders.stale_batches = [[claim(orders, "o1", 3)]]
    lifecycle.unreadable = True

    report = sweep_stale_orders(deps, POLICY)

    assert (report.skipped, orders.claims) == ("broker_unreadable", [])
    assert orders.status("o1") == OrderStatus.PENDING


def test_while_the_inventory_is_not_serving_a_used_up_order_is_redriven_not_failed(
    deps: MonitorDependencies, orders: FakeOrders, reservations: FakeReservations,
    publisher: FakePublisher,
) -> None:
    orders.add("o1", [OrderItem(7, 1)], status=OrderStatus.PROCESSING)
    orders.add("o2", [OrderItem(7, 1)], status=OrderStatus.PENDING)
    orders.stale_batches = [[claim(orders, "o1", 3), claim(orders, "o2", 1)]]
    reservations.serving = False

    report = sweep_stale_orders(deps, POLICY)

    assert (report.redriven, report.failed) == (2, 0)
    assert sorted(publisher.published) == [
        ("o1", OrderStatus.PROCESSING, 0.0, "re-drive attempt 3; failing postponed: inventory not serving"),
        ("o2", OrderStatus.PENDING, 0.0, "re-drive attempt 1 of 2"),
    ]
    assert orders.status("o1") == OrderStatus.PROCESSING


def test_lease_lets_a_redriven_step_run_as_long_as_a_normal_one() -> None:
    from dataclasses import replace

    from services.common.config import Settings

    settings = replace(Settings(), step_delay_max_s=3.0, stale_after_s=60.0, stale_retries=2)

    policy = SweepPolicy.from_settings(settings)

    assert policy.lease_s == pytest.approx(4.0)
    assert (policy.stale_after_s, policy.retries) == (60.0, 2)


@pytest.mark.parametrize(
    ("claims", "retries", "decision"),
    [
        (1, 2, stale_rules.Redrive(1, 2)),
        (2, 2, stale_rules.Redrive(2, 2)),
        (3, 2, stale_rules.FailStale(2)),
        (5, 2, stale_rules.FailStale(2)),
        (1, 0, stale_rules.FailStale(0)),
    ],
)
def test_stale_step_is_redriven_retries_times_then_failed(
    claims: int, retries: int, decision: object
) -> None:
    assert stale_rules.decide_stale(claims, retries) == decision


def test_a_used_up_order_is_redriven_again_while_something_else_explains_its_lost_step() -> None:
    assert stale_rules.decide_stale(3, 2, "inventory not serving") == stale_rules.Redrive(
        3, 2, postponed_because="inventory not serving"
    )
    assert stale_rules.decide_stale(2, 2, "inventory not serving") == stale_rules.Redrive(2, 2)


def test_stale_failure_note_names_the_step_and_the_redrives() -> None:
    note = stale_rules.FailStale(2).note(OrderStatus.PACKAGING)
    assert note == "stale: step PACKAGING overdue after 2 re-drives"
    assert stale_rules.Redrive(1, 2).note == "re-drive attempt 1 of 2"


def test_a_lag_once_seen_is_believed_for_a_while_after_the_broker_stops_showing_it() -> None:
    lifecycle = FakeLifecycle()
    now = [0.0]
    remembered = RememberedLag(lifecycle, memory_s=30.0, clock=lambda: now[0])

    lifecycle.lag = LifecycleLag(live_workers=1, queue_length=500, lag_s=90.0)
    assert remembered.read().lag_s == 90.0
    now[0] = 20.0
    lifecycle.lag = LifecycleLag(live_workers=1, queue_length=0, lag_s=0.0)
    assert remembered.read().lag_s == 90.0, "a drained queue is not a drained backlog"
    now[0] = 51.0
    assert remembered.read().lag_s == 0.0
    assert remembered.read().queue_length == 0
