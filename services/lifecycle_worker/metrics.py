"""The worker's step durations as a Prometheus series (services.common.metrics.series)."""

from __future__ import annotations

from prometheus_client import Histogram

from services.common.lifecycle.status import NON_TERMINAL, OrderStatus
from services.common.metrics.series import step_seconds


class PrometheusStepMetrics:
    def __init__(self) -> None:
        self._series = step_seconds()
        # The steps there are show from the start; a stray message naming another status
        # gets its child when it comes.
        self._by_step: dict[OrderStatus, Histogram] = {
            status: self._series.labels(status.value) for status in NON_TERMINAL
        }

    def step_finished(self, step: OrderStatus, seconds: float) -> None:
        histogram = self._by_step.get(step)
        if histogram is None:
            histogram = self._by_step[step] = self._series.labels(step.value)
        histogram.observe(seconds)
