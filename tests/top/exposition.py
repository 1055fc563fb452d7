"""Real Prometheus exposition text for `fulfillment top`'s tests: the contract's series
in a private registry, set to known values and written by prometheus_client itself."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ORDER_SERVICE = "fulfillment.orders.v1.OrderService"
# The services' RPC latency buckets (services/common/metrics/series.py).
RPC_SECONDS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)


class PartMetrics:
    """One part's series, as the services name and label them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.handled = Counter(
            "grpc_server_handled", "", ["grpc_service", "grpc_method", "grpc_code"], registry=r
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds", "", ["grpc_service", "grpc_method"],
            buckets=RPC_SECONDS_BUCKETS, registry=r,
        )
        self.created = Counter("fulfillment_orders_created", "", registry=r)
        self.transitions = Counter(
            "fulfillment_order_transitions", "", ["from_status", "to_status"], registry=r
        )
        self.by_status = Gauge("fulfillment_orders", "", ["status"], registry=r)
        self.stale = Counter("fulfillment_stale_orders", "", ["action"], registry=r)
        self.queue = Gauge("fulfillment_lifecycle_queue_length", "", registry=r)

    def call(self, method: str, seconds: float, code: str = "OK", times: int = 1) -> None:
        for _ in range(times):
            self.latency.labels(ORDER_SERVICE, method).observe(seconds)
            self.handled.labels(ORDER_SERVICE, method, code).inc()

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def screen_rows(screen: str) -> list[list[str]]:
    """The cells of every table row `fulfillment top` printed."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in screen.splitlines()
        if line.startswith("│")
    ]
