"""The monitor's stale actions as a Prometheus series (services.common.metrics.series)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from services.common.metrics.series import stale_orders_series

STALE_ACTIONS = ("redriven", "failed")


class PrometheusStaleMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        series = stale_orders_series(registry)
        self._by_action = {action: series.labels(action) for action in STALE_ACTIONS}

    def stale_order_handled(self, action: str) -> None:
        self._by_action[action].inc()
