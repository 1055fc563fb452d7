"""What `fulfillment top` shows, computed from two readings of the parts' /metrics.

Pure functions of Prometheus exposition text, so every number can be checked against
real scrapes. Counters and histogram buckets are compared series by series between the
two readings (a series that went down was reset: its process restarted), as Prometheus's
increase() does; a part missing from either reading adds nothing to a rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from services.common.lifecycle.status import OrderStatus

# Failures of the server, not of the caller's request (the alert rules use the same set).
SERVER_ERROR_CODES = frozenset({"INTERNAL", "UNKNOWN", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS"})
LATENCY_QUANTILE = 0.99

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]  # (part, labels): one series of one endpoint


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Labels
    value: float


def parse_exposition(text: str) -> list[Sample]:
    """Every sample of a /metrics answer (counters keep their _total, histograms their
    _bucket/_sum/_count names)."""
    return [
        Sample(sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


@dataclass(frozen=True)
class Reading:
    """Every endpoint read once: its samples, or None for one that did not answer."""

    at: float  # monotonic seconds
    parts: Mapping[str, list[Sample] | None]


def totals(reading: Reading, name: str, **match: str) -> dict[SeriesKey, float]:
    wanted = match.items()
    return {
        (part, sample.labels): sample.value
        for part, samples in reading.parts.items() if samples is not None
        for sample in samples
        if sample.name == name and wanted <= dict(sample.labels).items()
    }


def increases(current: Reading, previous: Reading, name: str, **match: str) -> dict[SeriesKey, float]:
    """How much each series grew between the readings (after a reset: all of its value)."""
    before = totals(previous, name, **match)
    return {
        (part, labels): value - before.get((part, labels), 0.0)
        if value >= before.get((part, labels), 0.0) else value
        for (part, labels), value in totals(current, name, **match).items()
        if previous.parts.get(part) is not None
    }


def sum_by(values: Mapping[SeriesKey, float], *label_names: str) -> dict[tuple[str, ...], float]:
    summed: dict[tuple[str, ...], float] = {}
    for (_part, labels), value in values.items():
        found = dict(labels)
        key = tuple(found.get(label, "") for label in label_names)
        summed[key] = summed.get(key, 0.0) + value
    return summed


def bucket_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus's histogram_quantile on cumulative counts keyed by upper bound: linear
    inside the bucket holding the rank; in the +Inf bucket, the highest finite bound."""
    if math.inf not in buckets or buckets[math.inf] <= 0:
        return None
    rank = q * buckets[math.inf]
    lower, below = 0.0, 0.0
    for bound in sorted(buckets):
        count = buckets[bound]
        if count >= rank:
            if bound == math.inf:
                return lower
            if bound <= 0:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return None


def quantiles_by_rpc(values: Mapping[SeriesKey, float], q: float) -> dict[tuple[str, str], float | None]:
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    for (service, method, le), count in sum_by(values, "grpc_service", "grpc_method", "le").items():
        rpc = buckets.setdefault((service, method), {})
        rpc[float(le)] = rpc.get(float(le), 0.0) + count
    return {rpc: bucket_quantile(q, counts) for rpc, counts in buckets.items()}


@dataclass(frozen=True)
class RpcFigures:
    service: str
    method: str
    calls: float  # since the processes started
    calls_per_s: float | None
    p99_s_window: float | None  # over the calls between the two readings
    p99_s_total: float | None  # over every call since start


@dataclass(frozen=True)
class Figures:
    endpoints: dict[str, str]  # part -> up, down or off
    window_s: float | None
    orders_by_status: dict[str, float]
    orders_created: float
    intake_per_s: float | None
    delivered_per_s: float | None
    queue_length: float | None
    stale_total: dict[str, float]
    stale_window: dict[str, float]
    error_ratio_window: float | None
    error_ratio_total: float | None
    rpcs: list[RpcFigures] = field(default_factory=list)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _error_ratio(handled: Mapping[SeriesKey, float]) -> float | None:
    by_code = sum_by(handled, "grpc_code")
    errors = sum(v for (code,), v in by_code.items() if code in SERVER_ERROR_CODES)
    return _ratio(errors, sum(by_code.values()))


def compute_figures(current: Reading, previous: Reading | None, endpoints: Mapping[str, str]) -> Figures:
    """`endpoints`: part -> address ("" when that part's /metrics is turned off)."""
    window = current.at - previous.at if previous is not None else None
    states = {
        part: "off" if not addr else "up" if current.parts.get(part) is not None else "down"
        for part, addr in endpoints.items()
    }

    def per_second(name: str, **match: str) -> float | None:
        if previous is None or not window:
            return None
        return sum(increases(current, previous, name, **match).values()) / window

    handled = totals(current, "grpc_server_handled_total")
    buckets = totals(current, "grpc_server_handling_seconds_bucket")
    handled_window = increases(current, previous, "grpc_server_handled_total") if previous else {}
    buckets_window = (
        increases(current, previous, "grpc_server_handling_seconds_bucket") if previous else {}
    )
    calls = sum_by(handled, "grpc_service", "grpc_method")
    calls_window = sum_by(handled_window, "grpc_service", "grpc_method")
    p99_total = quantiles_by_rpc(buckets, LATENCY_QUANTILE)
    p99_window = quantiles_by_rpc(buckets_window, LATENCY_QUANTILE)
    rpcs = [
        RpcFigures(
            service, method, total,
            calls_window.get((service, method), 0.0) / window if window else None,
            p99_window.get((service, method)), p99_total.get((service, method)),
        )
        for (service, method), total in sorted(calls.items())
    ]
    by_status = sum_by(totals(current, "fulfillment_orders"), "status")
    queue = totals(current, "fulfillment_lifecycle_queue_length").values()
    stale_window = (
        sum_by(increases(current, previous, "fulfillment_stale_orders_total"), "action") if previous else {}
    )
    return Figures(
        endpoints=states,
        window_s=window,
        orders_by_status={
            status.value: by_status[(status.value,)] for status in OrderStatus if (status.value,) in by_status
        },
        orders_created=sum(totals(current, "fulfillment_orders_created_total").values()),
        intake_per_s=per_second("fulfillment_orders_created_total"),
        delivered_per_s=per_second("fulfillment_order_transitions_total", to_status="DELIVERED"),
        # Every worker and the monitor read the same broker queue: the largest is the latest.
        queue_length=max(queue) if queue else None,
        stale_total={
            a: v for (a,), v in sum_by(totals(current, "fulfillment_stale_orders_total"), "action").items()
        },
        stale_window={a: v for (a,), v in stale_window.items()},
        error_ratio_window=_error_ratio(handled_window) if previous else None,
        error_ratio_total=_error_ratio(handled),
        rpcs=rpcs,
    )
