"""Assemble the inventory service: one engine, one unit of work, both servicers."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from services.common.config import Settings
from services.common.db import create_engine
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    reservation_service_pb2,
    reservation_service_pb2_grpc,
)
from services.common.server import ServiceParts
from services.inventory.entrypoints.inventory_servicer import InventoryServicer
from services.inventory.entrypoints.reservation_servicer import ReservationServicer
from services.inventory.service_layer.unit_of_work import UnitOfWork

SERVICE_NAMES = (
    inventory_service_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name,
    reservation_service_pb2.DESCRIPTOR.services_by_name["ReservationService"].full_name,
)


# As many connections as before (10 + 10 overflow), but all kept: with 64 concurrent
# callers the overflow connections were opened and closed again all the time, each a
# new PostgreSQL backend. A hot row gains nothing from more connections: they would only
# queue on its lock inside PostgreSQL instead of in the pool.
POOL_CONNECTIONS = 20


async def build(settings: Settings) -> ServiceParts:
    engine = create_engine(
        settings.inventory_database_url, pool_size=POOL_CONNECTIONS, max_overflow=0
    )
    uow = UnitOfWork(engine)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server(
            InventoryServicer(uow), server
        )
        reservation_service_pb2_grpc.add_ReservationServiceServicer_to_server(
            ReservationServicer(uow), server
        )
        return SERVICE_NAMES

    return ServiceParts(register=register, close=engine.dispose)
