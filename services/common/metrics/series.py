"""Every series the parts export, defined in one place.

Names and labels of the contract's series are fixed (ARCHITECTURE.md, Observability):
grpc_server_handled_total, grpc_server_handling_seconds, fulfillment_orders_created_total,
fulfillment_order_transitions_total, fulfillment_reservations_total,
fulfillment_stale_orders_total and fulfillment_lifecycle_queue_length (broker.py).

Each part's series are created the first time that part asks for them, never at import:
prometheus_client decides between in-process values and multiprocess files when a value
is created, which must come after multiprocess.use_multiprocess_files. So a process shows
only its own part's series. Gauges say how the values of several processes of one part
add up (multiprocess_mode; ignored in a single process).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# RPC latency: unary calls take milliseconds; WatchOrder and bulk streams last as long as
# their order or upload, hence the long tail.
RPC_SECONDS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)
# A lifecycle step is a few gRPC calls (its simulated delay is waited out in the broker).
STEP_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class GrpcServerSeries:
    handled: Counter
    handling_seconds: Histogram


@cache
def grpc_server_series() -> GrpcServerSeries:
    return GrpcServerSeries(
        handled=Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by method and status code (a stream when it ends).",
            ["grpc_service", "grpc_method", "grpc_code"],
        ),
        handling_seconds=Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC on the server until its status (streams: until they end).",
            ["grpc_service", "grpc_method"],
            buckets=RPC_SECONDS_BUCKETS,
        ),
    )


@dataclass(frozen=True)
class OrderSeries:
    created: Counter
    transitions: Counter
    bulk_items: Counter
    watch_streams: Gauge
    by_status: Gauge


@cache
def order_series() -> OrderSeries:
    return OrderSeries(
        created=Counter(
            "fulfillment_orders_created",
            "Orders created (CreateOrder and BulkCreateOrders); a repeated request_id is not a new order.",
        ),
        transitions=Counter(
            "fulfillment_order_transitions",
            "Committed status transitions, whoever caused them (worker, customer, monitor).",
            ["from_status", "to_status"],
        ),
        bulk_items=Counter(
            "fulfillment_bulk_items",
            "BulkCreateOrders requests by outcome: created, repeat (an earlier order returned "
            "for its request_id) or rejected (an error status).",
            ["outcome"],
        ),
        watch_streams=Gauge(
            "fulfillment_watch_streams_open",
            "WatchOrder streams open now.",
            multiprocess_mode="livesum",
        ),
        by_status=Gauge(
            "fulfillment_orders",
            "Orders by status, counted in the database every few seconds.",
            ["status"],
            # Every server process counts the same table: the latest count is the answer.
            multiprocess_mode="mostrecent",
        ),
    )


@cache
def reservation_series() -> Counter:
    return Counter(
        "fulfillment_reservations",
        "ReserveStock decisions: reserved (stock held), short (refused for want of stock), "
        "repeat (an earlier decision for the order returned).",
        ["outcome"],
    )


@cache
def step_seconds() -> Histogram:
    return Histogram(
        "fulfillment_step_duration_seconds",
        "How long one lifecycle step took in the worker (its gRPC calls; not the simulated "
        "delay, which is waited out in the broker), by the status it started from.",
        ["step"],
        buckets=STEP_SECONDS_BUCKETS,
    )


@cache
def stale_orders_series(registry: CollectorRegistry = REGISTRY) -> Counter:
    """In the process's default registry, or in the monitor's own when it runs inside the
    worker's process (services.stale_monitor.runner.EmbeddedMonitor)."""
    return Counter(
        "fulfillment_stale_orders",
        "Stale orders the monitor handled: redriven (its step published again) or failed.",
        ["action"],
        registry=registry,
    )


def created_any() -> bool:
    """Whether this process created any of its series yet (multiprocess.py must come first)."""
    factories = (grpc_server_series, order_series, reservation_series, step_seconds, stale_orders_series)
    return any(factory.cache_info().currsize for factory in factories)
