"""The `fulfillment top` screen: the figures as rich tables, redrawn every interval."""

from __future__ import annotations

import time
from collections.abc import Mapping

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from services.common.lifecycle.status import OrderStatus
from services.top.figures import Figures, Reading, compute_figures
from services.top.scrape import read_all

NONE = "-"


def _count(value: float | None) -> str:
    return NONE if value is None else f"{value:,.0f}"


def _rate(value: float | None) -> str:
    return NONE if value is None else f"{value:,.1f}/s"


def _latency(seconds: float | None) -> str:
    return NONE if seconds is None else f"{seconds * 1000:,.1f} ms"


def _percent(ratio: float | None) -> str:
    return NONE if ratio is None else f"{ratio * 100:.2f}%"


def render(figures: Figures, endpoints: Mapping[str, str]) -> RenderableType:
    window = f"last {figures.window_s:.1f}s" if figures.window_s else "one reading"
    parts = Table(title="endpoints", title_justify="left")
    for column in ("part", "/metrics", "state"):
        parts.add_column(column)
    for part, state in figures.endpoints.items():
        style = {"up": "green", "down": "bold red", "off": "dim"}[state]
        parts.add_row(part, endpoints[part] or NONE, Text(state, style=style))

    statuses = Table(title="orders by status", title_justify="left")
    for status in OrderStatus:
        statuses.add_column(status.value, justify="right")
    statuses.add_row(*(_count(figures.orders_by_status.get(s.value)) for s in OrderStatus))

    flow = Table(title=f"flow ({window})", title_justify="left")
    for column in ("created", "intake", "delivered", "queue", "stale redriven", "stale failed",
                   "server errors", "errors since start"):
        flow.add_column(column, justify="right")
    flow.add_row(
        _count(figures.orders_created),
        _rate(figures.intake_per_s),
        _rate(figures.delivered_per_s),
        _count(figures.queue_length),
        _stale(figures, "redriven"),
        _stale(figures, "failed"),
        _percent(figures.error_ratio_window),
        _percent(figures.error_ratio_total),
    )

    rpcs = Table(title="RPCs (p99 latency)", title_justify="left")
    rpcs.add_column("rpc")
    for column in ("calls", "calls/s", f"p99 {window}", "p99 since start"):
        rpcs.add_column(column, justify="right")
    for rpc in figures.rpcs:
        rpcs.add_row(
            f"{rpc.service}/{rpc.method}", _count(rpc.calls), _rate(rpc.calls_per_s),
            _latency(rpc.p99_s_window), _latency(rpc.p99_s_total),
        )
    return Group(parts, statuses, flow, rpcs)


def _stale(figures: Figures, action: str) -> str:
    total = figures.stale_total.get(action)
    if total is None:
        return NONE
    added = figures.stale_window.get(action)
    return _count(total) + (f" (+{added:,.0f})" if added else "")


def show_once(endpoints: Mapping[str, str], interval: float, console: Console) -> Figures:
    """Two readings `interval` apart, one frame printed."""
    timeout = max(min(interval, 5.0), 0.5)
    first = read_all(dict(endpoints), timeout)
    time.sleep(max(interval - (time.monotonic() - first.at), 0.0))
    second = read_all(dict(endpoints), timeout)
    figures = compute_figures(second, first, endpoints)
    console.print(render(figures, endpoints))
    return figures


def show_live(endpoints: Mapping[str, str], interval: float, console: Console) -> None:
    """Redraw every `interval` seconds until interrupted."""
    timeout = max(min(interval, 5.0), 0.5)
    previous: Reading | None = None
    current = read_all(dict(endpoints), timeout)
    with Live(render(compute_figures(current, None, endpoints), endpoints), console=console,
              auto_refresh=False, screen=console.is_terminal) as live:
        while True:
            time.sleep(max(interval - (time.monotonic() - current.at), 0.0))
            previous, current = current, read_all(dict(endpoints), timeout)
            live.update(render(compute_figures(current, previous, endpoints), endpoints), refresh=True)
