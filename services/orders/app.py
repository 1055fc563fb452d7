"""Assemble the orders service: engine, inventory channel, task publisher, change feed,
stock release retrier, metrics (when ORDERS_METRICS_ADDR is set), and both servicers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from services.common.channels import aio_channel
from services.common.config import Settings
from services.common.database.engines import service_pools
from services.common.lifecycle.timing import step_due_in
from services.common.page_token_secret import page_token_source
from services.common.proto.fulfillment.orders.v1 import (
    lifecycle_service_pb2,
    lifecycle_service_pb2_grpc,
    orders_service_pb2,
    orders_service_pb2_grpc,
)
from services.common.security import service_token_source
from services.common.server import ServiceParts
from services.common.tls import channel_credentials
from services.orders.adapters import tables
from services.orders.adapters.change_feed import PostgresChangeFeed
from services.orders.adapters.inventory_client import InventoryCatalog, ReservationReleaser
from services.orders.adapters.metrics import PrometheusOrderMetrics
from services.orders.adapters.price_cache import CachedCatalog
from services.orders.adapters.step_publisher import BatchedFirstStepPublisher
from services.orders.adapters.unit_of_work import SqlUnitOfWork
from services.orders.entrypoints.lifecycle_servicer import OrderLifecycleServicer
from services.orders.entrypoints.order_servicer import OrderServicer
from services.orders.service_layer.dependencies import OrderServiceDeps
from services.orders.service_layer.ports import NoOrderMetrics, OrderMetrics
from services.orders.service_layer.status_counts import OrdersByStatusRefresher
from services.orders.service_layer.stock_release import StockReleaseRetrier

# The `service` caller the orders service is to the inventory.
ORDERS_SUBJECT = "orders"

SERVICE_NAMES = (
    orders_service_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name,
    lifecycle_service_pb2.DESCRIPTOR.services_by_name["OrderLifecycleService"].full_name,
)


@dataclass
class OrdersApp:
    """The running service's parts, for the server and for tests that look inside."""

    deps: OrderServiceDeps
    change_feed: PostgresChangeFeed
    parts: ServiceParts
    # The orders-by-status gauge's refresher; None with metrics off.
    status_counts: OrdersByStatusRefresher | None = None


async def build(settings: Settings) -> ServiceParts:
    return (await build_app(settings)).parts


async def build_app(settings: Settings) -> OrdersApp:
    # Creates and transitions run on the statement pool, reads, cancels and the rest on
    # SQLAlchemy's; the change feed holds one more connection.
    engine, statements = service_pools(settings.orders_database_url, settings.db_connections)
    uow = SqlUnitOfWork(engine, statements)
    page_tokens = page_token_source(settings, engine, tables.page_token_secret)
    inventory_channel = aio_channel(
        settings.inventory_addr, channel_credentials(settings),
        service_token_source(settings, ORDERS_SUBJECT),
    )
    releaser = ReservationReleaser(inventory_channel, settings.grpc_deadline_s)
    publisher = BatchedFirstStepPublisher(settings)
    change_feed = PostgresChangeFeed(settings.orders_database_url)
    retrier = StockReleaseRetrier(uow, releaser)
    metrics: OrderMetrics = PrometheusOrderMetrics() if settings.orders_metrics_addr else NoOrderMetrics()
    status_counts = OrdersByStatusRefresher(uow, metrics) if settings.orders_metrics_addr else None
    deps = OrderServiceDeps(
        uow=uow,
        catalog=CachedCatalog(
            InventoryCatalog(inventory_channel, settings.grpc_deadline_s), settings.price_cache_size
        ),
        releaser=releaser,
        publisher=publisher,
        changes=change_feed,
        retry_stock_releases=retrier.retry_soon,
        # The first step is published at once; it is due as the longest step would be.
        first_step_due_in_s=step_due_in(settings.step_delay_max_s),
        bulk_max_items=settings.bulk_max_items,
        page_tokens=page_tokens,
        metrics=metrics,
    )
    change_feed.start()
    retrier.start()
    if status_counts is not None:
        status_counts.start()

    def register(server: grpc.aio.Server) -> Sequence[str]:
        orders_service_pb2_grpc.add_OrderServiceServicer_to_server(OrderServicer(deps), server)
        lifecycle_service_pb2_grpc.add_OrderLifecycleServiceServicer_to_server(
            OrderLifecycleServicer(deps), server
        )
        return SERVICE_NAMES

    async def close() -> None:
        if status_counts is not None:
            await status_counts.close()
        await retrier.close()
        await change_feed.close()
        await publisher.close()
        await inventory_channel.close()
        await statements.close()
        await engine.dispose()

    parts = ServiceParts(register=register, close=close, on_stopping=[change_feed.stop_watches])
    return OrdersApp(deps, change_feed, parts, status_counts)
