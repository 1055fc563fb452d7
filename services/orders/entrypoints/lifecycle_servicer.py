"""OrderLifecycleService over gRPC, for the lifecycle worker and the stale monitor."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as lifecycle_pb2
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2_grpc
from services.orders.entrypoints import requests, responses
from services.orders.entrypoints.callers import current_caller
from services.orders.service_layer import transitions
from services.orders.service_layer.dependencies import OrderServiceDeps

Context: TypeAlias = grpc.aio.ServicerContext


class OrderLifecycleServicer(lifecycle_service_pb2_grpc.OrderLifecycleServiceServicer):
    def __init__(self, deps: OrderServiceDeps) -> None:
        self._deps = deps

    async def AdvanceOrder(
        self, request: lifecycle_pb2.AdvanceOrderRequest, context: Context
    ) -> lifecycle_pb2.AdvanceOrderResponse:
        command = requests.advance_command(request, current_caller().actor)
        result = await transitions.advance_order(command, self._deps)
        return lifecycle_pb2.AdvanceOrderResponse(
            order=responses.order_message(result.order),
            applied=result.applied,
            then_applied=result.then_applied,
        )

    async def ClaimStaleOrders(
        self, request: lifecycle_pb2.ClaimStaleOrdersRequest, context: Context
    ) -> lifecycle_pb2.ClaimStaleOrdersResponse:
        claimed = await transitions.claim_stale_orders(requests.claim_command(request), self._deps)
        return lifecycle_pb2.ClaimStaleOrdersResponse(
            orders=[responses.stale_order_message(stale) for stale in claimed]
        )
