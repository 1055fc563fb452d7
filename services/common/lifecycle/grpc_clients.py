"""The orders and inventory services as the lifecycle's actors see them (gRPC only).

Every call carries a deadline and goes through `call_with_retries`, the actors' one retry
layer. Errors that mean something to the lifecycle come back as the exceptions declared
in `ports`, read from their structured reasons (google.rpc.ErrorInfo), never from the
message text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.channels import lifecycle_channel
from services.common.config import Settings
from services.common.error_infos import error_infos
from services.common.errors import Reason
from services.common.lifecycle.ports import (
    AdvanceResult,
    IllegalTransition,
    OrderItem,
    OrderNotFound,
    OrderSnapshot,
    ReservationRefused,
    ReservationRejected,
    Shortfall,
    StaleOrder,
    StockShortfall,
)
from services.common.lifecycle.retry import (
    TRANSIENT_CODES,
    RetryPolicy,
    call_with_retries,
    status_code,
)
from services.common.lifecycle.status import OrderStatus
from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2 as reservation_pb2,
)
from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2_grpc as reservation_grpc,
)
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as lifecycle_pb2
from services.common.proto.fulfillment.orders.v1 import (
    lifecycle_service_pb2_grpc as lifecycle_grpc,
)
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2_grpc as orders_grpc
from services.common.security import service_token_source
from services.common.tls import channel_credentials

# A claim that timed out may still have been applied (and counted) by the server, so a
# retry after DEADLINE_EXCEEDED would spend a re-drive; only retry what surely did not run.
_CLAIM_RETRY = RetryPolicy(
    retryable=TRANSIENT_CODES - {grpc.StatusCode.DEADLINE_EXCEEDED}
)


def order_status(value: int) -> OrderStatus:
    return OrderStatus(orders_pb2.Order.Status.Name(value))


def order_snapshot(order: orders_pb2.Order) -> OrderSnapshot:
    return OrderSnapshot(
        order_id=order.order_id,
        status=order_status(order.status),
        items=tuple(OrderItem(i.product_id, i.quantity) for i in order.items),
    )


class GrpcOrders:
    """OrderService (reads) and OrderLifecycleService (transitions, stale claims)."""

    def __init__(self, channel: grpc.Channel, deadline_s: float, policy: RetryPolicy) -> None:
        self._orders = orders_grpc.OrderServiceStub(channel)
        self._lifecycle = lifecycle_grpc.OrderLifecycleServiceStub(channel)
        self._deadline_s = deadline_s
        self._policy = policy

    def get_order(self, order_id: str) -> OrderSnapshot:
        request = orders_pb2.GetOrderRequest(order_id=order_id)
        try:
            order = call_with_retries(
                lambda: self._orders.GetOrder(request, timeout=self._deadline_s),
                self._policy, "GetOrder",
            )
        except grpc.RpcError as exc:
            if status_code(exc) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise OrderNotFound(order_id) from exc
            raise
        return order_snapshot(order)

    def advance_order(
        self,
        order_id: str,
        expected_status: OrderStatus,
        to_status: OrderStatus,
        note: str,
        next_step_due_in_s: float,
        then_statuses: Sequence[OrderStatus] = (),
    ) -> AdvanceResult:
        request = lifecycle_pb2.AdvanceOrderRequest(
            then_statuses=[status.value for status in then_statuses],
            order_id=order_id,
            # Enum fields take their value names ("PROCESSING") as well as numbers.
            expected_status=expected_status.value,
            to_status=to_status.value,
            note=note,
            next_step_due_in_seconds=next_step_due_in_s,
        )
        try:
            response = call_with_retries(
                lambda: self._lifecycle.AdvanceOrder(request, timeout=self._deadline_s),
                self._policy, "AdvanceOrder",
            )
        except grpc.RpcError as exc:
            if status_code(exc) == grpc.StatusCode.NOT_FOUND:
                raise OrderNotFound(order_id) from exc
            if status_code(exc) == grpc.StatusCode.FAILED_PRECONDITION:
                raise IllegalTransition(order_id, self._current_status(exc, order_id)) from exc
            raise
        return AdvanceResult(
            order_snapshot(response.order), response.applied, response.then_applied
        )

    def _current_status(self, exc: grpc.RpcError, order_id: str) -> OrderStatus:
        """The order's status as the refused compare-and-set found it (its ILLEGAL_TRANSITION
        reason says); a read when the reason does not (a move that is no step at all)."""
        for info in error_infos(exc, Reason.ILLEGAL_TRANSITION):
            if "current_status" in info:
                return OrderStatus(info["current_status"])
        return self.get_order(order_id).status

    def claim_stale_orders(
        self, limit: int, stale_after_s: float, lease_s: float
    ) -> list[StaleOrder]:
        request = lifecycle_pb2.ClaimStaleOrdersRequest(
            limit=limit, stale_after_seconds=stale_after_s, lease_seconds=lease_s
        )
        response = call_with_retries(
            lambda: self._lifecycle.ClaimStaleOrders(request, timeout=self._deadline_s),
            _CLAIM_RETRY, "ClaimStaleOrders",
        )
        return [StaleOrder(order_snapshot(s.order), s.stale_claims) for s in response.orders]


class GrpcReservations:
    """The inventory's internal ReservationService."""

    def __init__(self, channel: grpc.Channel, deadline_s: float, policy: RetryPolicy) -> None:
        self._stub = reservation_grpc.ReservationServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._deadline_s = deadline_s
        self._policy = policy

    def reserve_stock(self, order_id: str, items: Sequence[OrderItem]) -> None:
        request = reservation_pb2.ReserveStockRequest(
            order_id=order_id,
            items=[
                reservation_pb2.ReservationItem(product_id=i.product_id, quantity=i.quantity)
                for i in items
            ],
        )
        try:
            call_with_retries(
                lambda: self._stub.ReserveStock(request, timeout=self._deadline_s),
                self._policy, "ReserveStock",
            )
        except grpc.RpcError as exc:
            code = status_code(exc)
            shortfalls = [shortfall_of(info) for info in error_infos(exc, Reason.INSUFFICIENT_STOCK)]
            if shortfalls:
                raise StockShortfall(shortfalls) from exc
            if error_infos(exc, Reason.RESERVATION_RELEASED):
                raise ReservationRefused(_details(exc)) from exc
            # Any other refusal (an unknown product, a request it finds invalid, a
            # precondition without a reason we know) will not change by asking again.
            if code in (
                grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.INVALID_ARGUMENT,
            ):
                raise ReservationRejected(_details(exc)) from exc
            raise

    def release_stock(self, order_id: str) -> tuple[OrderItem, ...]:
        request = reservation_pb2.ReleaseStockRequest(order_id=order_id)
        response = call_with_retries(
            lambda: self._stub.ReleaseStock(request, timeout=self._deadline_s),
            self._policy, "ReleaseStock",
        )
        return tuple(OrderItem(i.product_id, i.quantity) for i in response.released_items)

    def is_serving(self) -> bool:
        try:
            reply = self._health.Check(health_pb2.HealthCheckRequest(), timeout=self._deadline_s)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


def _details(exc: grpc.RpcError) -> str:
    return (exc.details() or "") if hasattr(exc, "details") else str(exc)


def shortfall_of(info: Mapping[str, str]) -> Shortfall:
    """One short product of an INSUFFICIENT_STOCK reason."""
    available = info.get("available")
    return Shortfall(
        int(info["product_id"]), int(info["requested"]), None if available is None else int(available)
    )


@dataclass
class ServiceClients:
    """One channel per service for this process; build after any fork, close at exit."""

    orders: GrpcOrders
    reservations: GrpcReservations
    channels: tuple[grpc.Channel, ...]

    @classmethod
    def connect(cls, settings: Settings, subject: str) -> ServiceClients:
        """Channels to both services, presenting a `service` token for `subject`."""
        policy = RetryPolicy()
        credentials = channel_credentials(settings)
        token_source = service_token_source(settings, subject)
        orders_channel = lifecycle_channel(settings.orders_addr, credentials, token_source)
        inventory_channel = lifecycle_channel(settings.inventory_addr, credentials, token_source)
        return cls(
            orders=GrpcOrders(orders_channel, settings.grpc_deadline_s, policy),
            reservations=GrpcReservations(inventory_channel, settings.grpc_deadline_s, policy),
            channels=(orders_channel, inventory_channel),
        )

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
