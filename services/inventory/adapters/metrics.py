"""The inventory's counts as Prometheus series (services.common.metrics.series)."""

from __future__ import annotations

from services.common.metrics.series import reservation_series

RESERVATION_OUTCOMES = ("reserved", "short", "repeat")


class PrometheusReservationMetrics:
    def __init__(self) -> None:
        series = reservation_series()
        # Every outcome shows from the start (at 0), so a rate over it is defined at once.
        self._by_outcome = {outcome: series.labels(outcome) for outcome in RESERVATION_OUTCOMES}

    def reservation_decided(self, outcome: str) -> None:
        self._by_outcome[outcome].inc()
