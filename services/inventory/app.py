"""Assemble the inventory service: engine and statement pool, unit of work, metrics (when
INVENTORY_METRICS_ADDR is set), both servicers."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from services.common.config import Settings
from services.common.database.engines import service_pools
from services.common.page_token_secret import page_token_source
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    reservation_service_pb2,
    reservation_service_pb2_grpc,
)
from services.common.server import ServiceParts
from services.inventory.adapters import tables
from services.inventory.adapters.metrics import PrometheusReservationMetrics
from services.inventory.adapters.unit_of_work import SqlUnitOfWork
from services.inventory.entrypoints.inventory_servicer import InventoryServicer
from services.inventory.entrypoints.reservation_servicer import ReservationServicer
from services.inventory.service_layer.dependencies import InventoryServiceDeps
from services.inventory.service_layer.ports import NoReservationMetrics, ReservationMetrics
from services.inventory.service_layer.reservations import reservation_batches

SERVICE_NAMES = (
    inventory_service_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name,
    reservation_service_pb2.DESCRIPTOR.services_by_name["ReservationService"].full_name,
)


async def build(settings: Settings) -> ServiceParts:
    # Reservations, the hot path, run on the statement pool; SQLAlchemy's pool serves the
    # catalog, stock writes and the rarer multi-statement reservation paths. A hot row
    # gains nothing from more connections: they would only queue on its lock inside
    # PostgreSQL instead of here.
    engine, statements = service_pools(settings.inventory_database_url, settings.db_connections)
    metrics: ReservationMetrics = (
        PrometheusReservationMetrics() if settings.inventory_metrics_addr else NoReservationMetrics()
    )
    uow = SqlUnitOfWork(engine, statements)
    deps = InventoryServiceDeps(
        uow=uow,
        page_tokens=page_token_source(settings, engine, tables.page_token_secret),
        reservation_batches=reservation_batches(uow),
        metrics=metrics,
    )

    async def close() -> None:
        await statements.close()
        await engine.dispose()

    def register(server: grpc.aio.Server) -> Sequence[str]:
        inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server(
            InventoryServicer(deps), server
        )
        reservation_service_pb2_grpc.add_ReservationServiceServicer_to_server(
            ReservationServicer(deps), server
        )
        return SERVICE_NAMES

    return ServiceParts(register=register, close=close)
