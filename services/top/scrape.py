"""Reading the parts' /metrics endpoints at their configured addresses."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from services.common.config import Settings, split_addr
from services.top.figures import Reading, Sample, parse_exposition


def metrics_endpoints(settings: Settings) -> dict[str, str]:
    """part -> its METRICS_ADDR ("" when turned off)."""
    return {
        "inventory": settings.inventory_metrics_addr,
        "orders": settings.orders_metrics_addr,
        "worker": settings.worker_metrics_addr,
        "monitor": settings.monitor_metrics_addr,
    }


def metrics_url(addr: str) -> str:
    """Where to read an endpoint that listens on `addr`: a wildcard listener on loopback."""
    host, port = split_addr(addr)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/metrics"


def read_endpoint(addr: str, timeout: float) -> list[Sample] | None:
    """The endpoint's samples; None when it does not answer or answers something else."""
    try:
        with urllib.request.urlopen(metrics_url(addr), timeout=timeout) as response:
            text = response.read().decode()
        return parse_exposition(text)
    except (OSError, ValueError, urllib.error.URLError):
        return None


def read_all(endpoints: dict[str, str], timeout: float) -> Reading:
    """Every endpoint that is on, read at once."""
    on = {part: addr for part, addr in endpoints.items() if addr}
    at = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(len(on), 1)) as pool:
        futures = {part: pool.submit(read_endpoint, addr, timeout) for part, addr in on.items()}
        parts = {part: future.result() for part, future in futures.items()}
    return Reading(at=at, parts=parts)
