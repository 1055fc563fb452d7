"""fulfillment.inventory.v1.ReservationService (internal): reserve and release order stock."""

from __future__ import annotations

import grpc

from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2 as reservation_pb2,
)
from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2_grpc as reservation_pb2_grpc,
)
from services.inventory.entrypoints import requests, responses
from services.inventory.service_layer import reservations
from services.inventory.service_layer.dependencies import InventoryServiceDeps


class ReservationServicer(reservation_pb2_grpc.ReservationServiceServicer):
    def __init__(self, deps: InventoryServiceDeps) -> None:
        self._deps = deps

    async def ReserveStock(
        self, request: reservation_pb2.ReserveStockRequest, context: grpc.aio.ServicerContext
    ) -> reservation_pb2.ReserveStockResponse:
        outcome = await reservations.reserve_stock(
            requests.reservation_request(request), self._deps
        )
        return reservation_pb2.ReserveStockResponse(
            order_id=outcome.reservation.order_id,
            items=responses.reservation_items(outcome.reservation.lines),
            newly_reserved=outcome.newly_reserved,
        )

    async def ReleaseStock(
        self, request: reservation_pb2.ReleaseStockRequest, context: grpc.aio.ServicerContext
    ) -> reservation_pb2.ReleaseStockResponse:
        outcome = await reservations.release_stock(
            requests.release_order_id(request), self._deps
        )
        return reservation_pb2.ReleaseStockResponse(
            order_id=outcome.order_id,
            released_items=responses.reservation_items(outcome.released),
        )
