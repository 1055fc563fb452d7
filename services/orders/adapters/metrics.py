"""The orders service's counts as Prometheus series (services.common.metrics.series)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge

from services.common.lifecycle.status import OrderStatus
from services.common.metrics.series import order_series


class PrometheusOrderMetrics:
    def __init__(self) -> None:
        series = order_series()
        self._created = series.created
        self._watch_streams = series.watch_streams
        # Label children looked up once: every transition and batch is then one increment.
        self._transitions: dict[tuple[OrderStatus, OrderStatus], Counter] = {}
        self._transition_series = series.transitions
        self._bulk_created = series.bulk_items.labels("created")
        self._bulk_repeats = series.bulk_items.labels("repeat")
        self._bulk_rejected = series.bulk_items.labels("rejected")
        self._by_status: dict[OrderStatus, Gauge] = {
            status: series.by_status.labels(status.value) for status in OrderStatus
        }

    def orders_created(self, count: int) -> None:
        if count:
            self._created.inc(count)

    def order_transitioned(self, from_status: OrderStatus, to_status: OrderStatus) -> None:
        key = (from_status, to_status)
        counter = self._transitions.get(key)
        if counter is None:
            counter = self._transitions[key] = self._transition_series.labels(
                from_status.value, to_status.value
            )
        counter.inc()

    def bulk_items(self, created: int, repeats: int, rejected: int) -> None:
        for counter, count in (
            (self._bulk_created, created), (self._bulk_repeats, repeats), (self._bulk_rejected, rejected),
        ):
            if count:
                counter.inc(count)

    def watch_opened(self) -> None:
        self._watch_streams.inc()

    def watch_closed(self) -> None:
        self._watch_streams.dec()

    def orders_by_status(self, counts: Mapping[OrderStatus, int]) -> None:
        for status, gauge in self._by_status.items():
            gauge.set(counts.get(status, 0))
