"""Both services in-process on loopback ports, over a database and a Redis db of their own:
the fuzz creates, reserves, advances and cancels real rows at random, which no other test
may meet. Run alone with `uv run pytest tests/fuzz` (or `-m fuzz`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial

import grpc
import pytest
from grpc_health.v1 import health_pb2

import services.inventory.app as inventory_app
from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as inventory_pb2
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2_grpc
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as lifecycle_pb2
from services.common.proto.fulfillment.orders.v1 import (
    lifecycle_service_pb2_grpc,
    orders_service_pb2_grpc,
)
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.devtools.stores import NoFreeRedisDb, claim_redis_db
from services.orders.app import build as build_orders
from tests.auth import authorized, bearer, secured_by
from tests.support import BackgroundServer, health_status, in_process_settings, private_database

REDIS_BASE = os.environ.get("FULFILLMENT_TEST_REDIS", "redis://127.0.0.1:6379")
Status = orders_pb2.Order.Status



@dataclass(frozen=True)
class Known:
    """Values that exist in the fuzz database, so that random requests also reach the
    code behind the first lookup."""

    product_ids: list[int]
    order_ids: list[str]
    page_tokens: list[str]


@dataclass
class FuzzTarget:
    inventory: BackgroundServer
    orders: BackgroundServer
    # Channels without a token of their own: each call presents the one its caller has
    # (tests.auth_helpers.bearer_for), an admin's or the service's.
    inventory_channel: grpc.Channel
    orders_channel: grpc.Channel
    known: Known
    settings: Settings

    def assert_healthy(self) -> None:
        """Both servers report SERVING and still answer a real read."""
        for server in (self.inventory, self.orders):
            assert health_status(server.addr, timeout=5) == health_pb2.HealthCheckResponse.SERVING
        product_id = self.known.product_ids[0]
        admin = bearer(self.settings)
        inventory_service_pb2_grpc.InventoryServiceStub(self.inventory_channel).GetStock(
            inventory_pb2.GetStockRequest(product_id=product_id), timeout=10, metadata=admin
        )
        orders_service_pb2_grpc.OrderServiceStub(self.orders_channel).GetOrder(
            orders_pb2.GetOrderRequest(order_id=self.known.order_ids[0]), timeout=10,
            metadata=admin,
        )


@pytest.fixture(scope="package")
def fuzz_settings(signing_key: str) -> Iterator[Settings]:
    try:
        redis_url, release_redis = claim_redis_db(REDIS_BASE)
    except NoFreeRedisDb:
        pytest.fail("no free Redis db number (1-15) for the fuzz tests")
    try:
        with private_database("fulfillment_fuzz") as database_url:
            yield in_process_settings(signing_key, database_url, redis_url, shutdown_grace_s=1.0)
    finally:
        release_redis()


@pytest.fixture(scope="package")
def fuzz(fuzz_settings: Settings) -> Iterator[FuzzTarget]:
    security = secured_by(fuzz_settings)
    with BackgroundServer(partial(inventory_app.build, fuzz_settings), security) as inventory:
        orders_settings = replace(fuzz_settings, inventory_addr=inventory.addr)
        with (
            BackgroundServer(partial(build_orders, orders_settings), security) as orders,
            grpc.insecure_channel(inventory.addr) as inventory_channel,
            grpc.insecure_channel(orders.addr) as orders_channel,
        ):
            known = _seed(inventory_channel, orders_channel, fuzz_settings)
            yield FuzzTarget(
                inventory, orders, inventory_channel, orders_channel, known, fuzz_settings
            )


def _seed(
    inventory_channel: grpc.Channel, orders_channel: grpc.Channel, settings: Settings
) -> Known:
    """As an admin, and the lifecycle steps as the worker does them (a `service` caller)."""
    inventory = inventory_service_pb2_grpc.InventoryServiceStub(
        authorized(inventory_channel, settings)
    )
    orders = orders_service_pb2_grpc.OrderServiceStub(authorized(orders_channel, settings))
    lifecycle = lifecycle_service_pb2_grpc.OrderLifecycleServiceStub(
        authorized(orders_channel, settings, Role.SERVICE)
    )
    product_ids = [
        inventory.CreateProduct(
            inventory_pb2.CreateProductRequest(
                sku=f"fuzz-{uuid.uuid4().hex[:12]}", name="fuzz product", price=price,
                initial_stock=stock,
            ),
            timeout=10,
        ).product_id
        for price, stock in [("1.00", 1_000_000), ("0.00", 0), ("9999999999.99", 5)]
    ]
    order_ids = []
    # One order in each of several states, so transitions and cancels meet each.
    for steps in [0, 1, 2, 3, 4]:
        order = orders.CreateOrder(
            orders_pb2.CreateOrderRequest(
                customer_name="fuzz customer",
                items=[orders_pb2.CreateOrderItem(product_id=product_ids[0], quantity=1)],
            ),
            timeout=10,
        )
        path = [Status.PENDING, Status.PROCESSING, Status.PACKAGING, Status.SHIPPED, Status.DELIVERED]
        for expected, to_status in list(zip(path, path[1:], strict=False))[:steps]:
            lifecycle.AdvanceOrder(
                lifecycle_pb2.AdvanceOrderRequest(
                    order_id=order.order_id, expected_status=expected, to_status=to_status,
                    next_step_due_in_seconds=3600,
                ),
                timeout=10,
            )
        order_ids.append(order.order_id)
    page_tokens = [
        inventory.ListProducts(
            inventory_pb2.ListProductsRequest(page_size=1), timeout=10
        ).next_page_token,
        orders.ListOrders(orders_pb2.ListOrdersRequest(page_size=1), timeout=10).next_page_token,
        orders.ListOrders(
            orders_pb2.ListOrdersRequest(page_size=1, customer_name="fuzz customer"), timeout=10
        ).next_page_token,
    ]
    assert all(page_tokens)
    return Known(product_ids, order_ids, page_tokens)
