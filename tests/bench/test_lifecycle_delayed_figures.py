"""How `bench lifecycle-delayed` reads an order's history: the delays drawn for it, its
overhead, the orders in flight and the steady window, on histories written by hand."""

from __future__ import annotations

import pytest

from services.bench.scenarios.lifecycle_delayed import (
    Walk,
    _add_order,
    _most_in_flight,
    _steady_rates,
)
from services.common.lifecycle.timing import STEP_DUE_MARGIN_S

pytestmark = pytest.mark.unit

M = STEP_DUE_MARGIN_S


def delivered_order(created: float, delays: tuple[float, float, float], late: float) -> list[
    tuple[str, float, float | None, str]
]:
    """PENDING at `created`, its first step at once, each delayed step `late` after its due time."""
    processing = created + 0.01
    packaging = processing + delays[0] + late
    shipped = packaging + delays[1] + late
    delivered = shipped + delays[2] + late
    return [
        ("PENDING", created, 4.0, "order received"),
        ("PROCESSING", processing, delays[0] + M, ""),
        ("PACKAGING", packaging, delays[1] + M, ""),
        ("SHIPPED", shipped, delays[2] + M, ""),
        ("DELIVERED", delivered, None, ""),
    ]


def test_overhead_is_creation_to_delivered_minus_the_delays_drawn_for_the_order() -> None:
    walk = Walk()
    _add_order(walk, delivered_order(100.0, (1.5, 2.0, 2.5), late=0.1))
    assert walk.delays_s == pytest.approx([1.5, 2.0, 2.5])
    assert walk.delay_sums_s == pytest.approx([6.0])
    assert walk.overheads_s == pytest.approx([0.01 + 3 * 0.1])
    assert walk.first_step_s == pytest.approx([0.01])
    assert walk.step_lateness_s == pytest.approx([0.1, 0.1, 0.1])
    assert walk.statuses == {"DELIVERED": 1} and walk.redrive_notes == 0


def test_a_failed_order_has_no_overhead_and_a_redriven_step_is_counted() -> None:
    walk = Walk()
    _add_order(
        walk,
        [
            ("PENDING", 10.0, 4.0, "order received"),
            ("PROCESSING", 75.0, 2.0 + M, "re-drive attempt 1 of 2"),
            ("FAILED", 76.0, None, "no stock"),
        ],
    )
    assert walk.statuses == {"FAILED": 1} and walk.redrive_notes == 1
    assert walk.overheads_s == [] and walk.delivered == [] and walk.rested_at == [76.0]


def test_most_in_flight_counts_orders_created_and_not_yet_at_rest() -> None:
    walk = Walk()
    for created in (0.0, 1.0, 2.0):
        _add_order(walk, delivered_order(created, (1.0, 1.0, 1.0), late=0.0))
    # Each takes 3.01 s: at 2.0 all three are moving; the first rests at 3.01.
    assert _most_in_flight(walk) == 3
    moving = Walk()
    _add_order(moving, [("PENDING", 0.0, 4.0, "order received")])
    _add_order(moving, delivered_order(10.0, (1.0, 1.0, 1.0), late=0.0))
    assert _most_in_flight(moving) == 2  # one never rested


def test_delivered_rate_is_taken_over_the_steady_window_only() -> None:
    walk = Walk()
    for index in range(200):  # 10/s for 20 s, each 3 s of delays and no overhead
        _add_order(walk, delivered_order(index / 10, (1.0, 1.0, 1.0), late=0.0))
    delivered, created, length, _, _, window = _steady_rates(walk, settle_s=4.0)
    assert window.startswith("steady window")
    assert length == pytest.approx(19.9 - 4.0)
    assert delivered == pytest.approx(10.0, rel=0.02) and created == pytest.approx(10.0, rel=0.02)
    # Deliveries that stop half-way show up as a lower delivered rate.
    half = Walk()
    for index in range(200):
        late = 0.0 if index < 100 else 5.0
        _add_order(half, delivered_order(index / 10, (1.0, 1.0, 1.0), late=late))
    slowed, _, _, _, _, _ = _steady_rates(half, settle_s=4.0)
    assert slowed < 9.0
