"""Synchronous gRPC clients and small helpers the orders tests share."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence

import grpc
import psycopg2
import redis

from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.lifecycle.status import OrderStatus
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE, RUN_STEP_TASK
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2 as inventory_pb2,
)
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2_grpc,
    reservation_service_pb2_grpc,
)
from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2 as reservation_pb2,
)
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as lifecycle_pb2
from services.common.proto.fulfillment.orders.v1 import (
    lifecycle_service_pb2_grpc,
    orders_service_pb2_grpc,
)
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.auth import authorized_channel

Status = orders_pb2.Order.Status
TIMEOUT = 30


class Clients:
    """The public APIs as an admin, the internal ones as the worker (a `service` caller)."""

    def __init__(
        self,
        orders_channel: grpc.Channel,
        inventory_channel: grpc.Channel,
        internal_orders_channel: grpc.Channel,
        internal_inventory_channel: grpc.Channel,
    ) -> None:
        self.orders = orders_service_pb2_grpc.OrderServiceStub(orders_channel)
        self.inventory = inventory_service_pb2_grpc.InventoryServiceStub(inventory_channel)
        self.lifecycle = lifecycle_service_pb2_grpc.OrderLifecycleServiceStub(
            internal_orders_channel
        )
        self.reservations = reservation_service_pb2_grpc.ReservationServiceStub(
            internal_inventory_channel
        )

    @classmethod
    @contextlib.contextmanager
    def connect(cls, orders_addr: str, inventory_addr: str, settings: Settings) -> Iterator[Clients]:
        channels = [
            authorized_channel(orders_addr, settings),
            authorized_channel(inventory_addr, settings),
            authorized_channel(orders_addr, settings, Role.SERVICE),
            authorized_channel(inventory_addr, settings, Role.SERVICE),
        ]
        try:
            yield cls(*channels)
        finally:
            for channel in channels:
                channel.close()

    def create_product(self, price: str = "9.99", stock: int = 1_000_000) -> int:
        product = self.inventory.CreateProduct(
            inventory_pb2.CreateProductRequest(
                sku=f"sku-{uuid.uuid4().hex[:12]}", name="test product", price=price,
                initial_stock=stock,
            ),
            timeout=TIMEOUT,
        )
        return product.product_id

    def stock(self, product_id: int) -> int:
        return self.inventory.GetStock(
            inventory_pb2.GetStockRequest(product_id=product_id), timeout=TIMEOUT
        ).stock_level

    def create_order(
        self, customer_name: str, items: list[tuple[int, int]], request_id: str = ""
    ) -> orders_pb2.Order:
        return self.orders.CreateOrder(order_request(customer_name, items, request_id), timeout=TIMEOUT)

    def advance(
        self, order_id: str, expected: int, to_status: int, note: str = "step done",
        then: Sequence[int] = (),
    ) -> lifecycle_pb2.AdvanceOrderResponse:
        return self.lifecycle.AdvanceOrder(
            lifecycle_pb2.AdvanceOrderRequest(
                order_id=order_id, expected_status=expected, to_status=to_status, note=note,
                next_step_due_in_seconds=5, then_statuses=then,
            ),
            timeout=TIMEOUT,
        )

    def reserve(self, order: orders_pb2.Order) -> None:
        self.reservations.ReserveStock(
            reservation_pb2.ReserveStockRequest(
                order_id=order.order_id,
                items=[
                    reservation_pb2.ReservationItem(product_id=i.product_id, quantity=i.quantity)
                    for i in order.items
                ],
            ),
            timeout=TIMEOUT,
        )

    def history(self, order_id: str) -> list[orders_pb2.HistoryEntry]:
        return list(
            self.orders.ListOrderHistory(
                orders_pb2.ListOrderHistoryRequest(order_id=order_id), timeout=TIMEOUT
            ).entries
        )

    def get(self, order_id: str) -> orders_pb2.Order:
        return self.orders.GetOrder(orders_pb2.GetOrderRequest(order_id=order_id), timeout=TIMEOUT)


def orders_stub(channel: grpc.Channel) -> orders_service_pb2_grpc.OrderServiceStub:
    return orders_service_pb2_grpc.OrderServiceStub(channel)


def order_request(
    customer_name: str, items: list[tuple[int, int]], request_id: str = ""
) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        request_id=request_id,
        customer_name=customer_name,
        items=[orders_pb2.CreateOrderItem(product_id=p, quantity=q) for p, q in items],
    )


# Every customer these tests create starts so; the package teardown retires their orders.
TEST_CUSTOMER_PREFIX = "orders-test-"


def unique_name(label: str = "customer") -> str:
    return f"{TEST_CUSTOMER_PREFIX}{label}-{uuid.uuid4().hex[:10]}"


def queued_step_tasks(redis_url: str) -> list[tuple[bytes, str, str]]:
    """(raw message, order_id, expected_status) of every step task in the lifecycle queue."""
    client = redis.Redis.from_url(redis_url)
    try:
        raw_messages = client.lrange(LIFECYCLE_QUEUE, 0, -1)
    finally:
        client.close()
    tasks = []
    for raw in raw_messages:
        message = json.loads(raw)
        if message["headers"]["task"] != RUN_STEP_TASK:
            continue
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, _kwargs, _embed = json.loads(body)
        tasks.append((raw, args[0], args[1]))
    return tasks


def first_step_tasks_for(redis_url: str, order_ids: set[str]) -> list[str]:
    """Order ids of the queued first-step tasks (expected PENDING) of `order_ids`."""
    return [
        order_id for _raw, order_id, expected in queued_step_tasks(redis_url)
        if order_id in order_ids and expected == OrderStatus.PENDING
    ]


def sql(database_url: str, query: str, params: tuple = ()) -> list[tuple]:
    """Read (or, for test setup and cleanup only, write) the database directly."""
    connection = psycopg2.connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def rpc_code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK
