"""`fulfillment top`: a live terminal view of the running stack, built only from the
/metrics endpoints of its parts (INVENTORY_METRICS_ADDR and friends)."""

from __future__ import annotations

from rich.console import Console

from services.common.config import Settings
from services.top.scrape import metrics_endpoints
from services.top.screen import show_live, show_once


def run_top(settings: Settings, interval: float, once: bool, console: Console | None = None) -> int:
    console = console or Console()
    endpoints = metrics_endpoints(settings)
    if not any(endpoints.values()):
        console.print("top: every METRICS_ADDR is empty, so there is nothing to read")
        return 2
    if once:
        figures = show_once(endpoints, interval, console)
        # For scripts: nothing answered is a failure, a partial view is not.
        return 0 if "up" in figures.endpoints.values() else 1
    try:
        show_live(endpoints, interval, console)
    except KeyboardInterrupt:
        pass
    return 0
