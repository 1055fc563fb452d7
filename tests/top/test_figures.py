"""`fulfillment top`'s numbers, computed from real exposition text of two readings."""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from services.top.figures import (
    Reading,
    bucket_quantile,
    compute_figures,
    parse_exposition,
)
from services.top.screen import render
from tests.top.exposition import ORDER_SERVICE, PartMetrics

pytestmark = pytest.mark.unit

ENDPOINTS = {
    "inventory": "127.0.0.1:9101", "orders": "127.0.0.1:9102",
    "worker": "127.0.0.1:9103", "monitor": "127.0.0.1:9104",
}


def reading(at: float, **parts: PartMetrics | None) -> Reading:
    return Reading(
        at=at,
        parts={
            part: None if metrics is None else parse_exposition(metrics.text())
            for part, metrics in parts.items()
        },
    )


def test_intake_and_deliveries_per_second_are_counter_increases_over_the_window() -> None:
    orders = PartMetrics()
    orders.created.inc(10)
    orders.transitions.labels("SHIPPED", "DELIVERED").inc(4)
    orders.transitions.labels("PENDING", "PROCESSING").inc(9)
    before = reading(100.0, orders=orders)
    orders.created.inc(20)
    orders.transitions.labels("SHIPPED", "DELIVERED").inc(6)
    orders.transitions.labels("PENDING", "PROCESSING").inc(50)
    figures = compute_figures(reading(102.0, orders=orders), before, ENDPOINTS)
    assert figures.window_s == 2.0
    assert figures.orders_created == 30
    assert figures.intake_per_s == 10.0
    assert figures.delivered_per_s == 3.0


def test_a_single_reading_has_totals_but_no_rates() -> None:
    orders = PartMetrics()
    orders.created.inc(7)
    figures = compute_figures(reading(1.0, orders=orders), None, ENDPOINTS)
    assert figures.orders_created == 7
    assert figures.intake_per_s is None and figures.delivered_per_s is None
    assert figures.error_ratio_window is None


def test_a_restarted_process_counts_from_zero_not_backwards() -> None:
    old, restarted = PartMetrics(), PartMetrics()
    old.created.inc(100)
    restarted.created.inc(5)
    figures = compute_figures(reading(11.0, orders=restarted), reading(10.0, orders=old), ENDPOINTS)
    assert figures.intake_per_s == 5.0


def test_a_part_that_was_down_adds_nothing_to_the_rates() -> None:
    orders = PartMetrics()
    orders.created.inc(50)
    figures = compute_figures(reading(2.0, orders=orders), reading(1.0, orders=None), ENDPOINTS)
    assert figures.intake_per_s == 0.0
    assert figures.orders_created == 50


def test_endpoints_are_up_down_or_off() -> None:
    endpoints = {**ENDPOINTS, "monitor": ""}
    figures = compute_figures(
        reading(1.0, inventory=PartMetrics(), orders=None, worker=PartMetrics()), None, endpoints
    )
    assert figures.endpoints == {"inventory": "up", "orders": "down", "worker": "up", "monitor": "off"}
    assert figures.orders_by_status == {}


def test_p99_per_rpc_over_the_window_and_since_start() -> None:
    orders = PartMetrics()
    orders.call("CreateOrder", 0.003, times=99)
    orders.call("CreateOrder", 0.4)
    orders.call("GetOrder", 0.0005, times=10)
    before = reading(0.0, orders=orders)
    orders.call("CreateOrder", 0.003, times=100)
    figures = compute_figures(reading(4.0, orders=orders), before, ENDPOINTS)
    (create, get) = figures.rpcs
    assert (create.service, create.method, create.calls) == (ORDER_SERVICE, "CreateOrder", 200)
    assert create.calls_per_s == 25.0
    # Window: all 100 calls in (0.0025, 0.005]: the rank 99 of 100 sits at 99% of it.
    assert create.p99_s_window == pytest.approx(0.0025 + 0.0025 * 99 / 100)
    # Since start: rank 198 of 200; 199 calls in (0.0025, 0.005], one in (0.25, 0.5].
    assert create.p99_s_total == pytest.approx(0.0025 + 0.0025 * 198 / 199)
    assert (get.method, get.calls, get.calls_per_s, get.p99_s_window) == ("GetOrder", 10, 0.0, None)
    assert get.p99_s_total == pytest.approx(0.001 * 0.99)


def test_bucket_quantile_is_prometheus_histogram_quantile() -> None:
    assert bucket_quantile(0.5, {0.1: 0, 0.2: 10, math.inf: 10}) == pytest.approx(0.15)
    assert bucket_quantile(0.99, {0.1: 5, math.inf: 10}) == 0.1  # in +Inf: the highest bound
    assert bucket_quantile(0.99, {0.1: 0, math.inf: 0}) is None
    assert bucket_quantile(0.99, {0.1: 3}) is None


def test_orders_by_status_queue_and_stale_actions() -> None:
    orders, worker_a, worker_b, monitor = PartMetrics(), PartMetrics(), PartMetrics(), PartMetrics()
    orders.by_status.labels("DELIVERED").set(40)
    orders.by_status.labels("PENDING").set(2)
    orders.by_status.labels("FAILED").set(1)
    worker_a.queue.set(12)
    monitor.queue.set(15)  # read a moment later
    monitor.stale.labels("redriven").inc(3)
    before = reading(0.0, orders=orders, worker=worker_a, monitor=monitor)
    monitor.stale.labels("redriven").inc(2)
    monitor.stale.labels("failed").inc(1)
    after = reading(1.0, orders=orders, worker=worker_b, monitor=monitor)
    figures = compute_figures(after, before, ENDPOINTS)
    assert list(figures.orders_by_status.items()) == [("PENDING", 2), ("DELIVERED", 40), ("FAILED", 1)]
    assert figures.queue_length == 15
    assert figures.stale_total == {"redriven": 5, "failed": 1}
    assert figures.stale_window == {"redriven": 2, "failed": 1}


def test_error_ratio_counts_server_failures_not_the_callers_mistakes() -> None:
    orders = PartMetrics()
    orders.call("CreateOrder", 0.01, times=90)
    orders.call("CreateOrder", 0.01, code="INVALID_ARGUMENT", times=5)
    orders.call("CreateOrder", 0.01, code="INTERNAL", times=5)
    before = reading(0.0, orders=orders)
    orders.call("CreateOrder", 0.01, times=6)
    orders.call("CreateOrder", 0.01, code="UNAVAILABLE", times=2)
    orders.call("CreateOrder", 0.01, code="NOT_FOUND", times=2)
    figures = compute_figures(reading(1.0, orders=orders), before, ENDPOINTS)
    assert figures.error_ratio_total == pytest.approx(7 / 110)
    assert figures.error_ratio_window == pytest.approx(2 / 10)


def test_the_screen_shows_every_figure_and_a_down_endpoint() -> None:
    orders = PartMetrics()
    orders.created.inc(3)
    orders.by_status.labels("DELIVERED").set(3)
    orders.call("CreateOrder", 0.003, times=3)
    before = reading(0.0, orders=orders)
    figures = compute_figures(reading(2.0, orders=orders, inventory=None), before, ENDPOINTS)
    console = Console(record=True, width=200, color_system=None)
    console.print(render(figures, ENDPOINTS))
    screen = console.export_text()
    assert "down" in screen and "127.0.0.1:9101" in screen
    assert f"{ORDER_SERVICE}/CreateOrder" in screen
    assert "0.0/s" in screen  # intake over the window: nothing new
    for status in ("PENDING", "DELIVERED", "CANCELED"):
        assert status in screen
