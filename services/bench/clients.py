"""What the load generator sends: pre-serialised requests over several gRPC connections,
so that server processes sharing a port through SO_REUSEPORT all get connections, and the
client spends no CPU parsing answers it does not read."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import grpc

from services.common.channels import dial_addr
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2,
    inventory_service_pb2_grpc,
)
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2

CREATE_ORDER = "/fulfillment.orders.v1.OrderService/CreateOrder"
RESERVE_STOCK = "/fulfillment.inventory.v1.ReservationService/ReserveStock"

RawCall = Callable[..., Awaitable[bytes]]
# The call metadata a bench caller presents: its bearer token (empty with authentication off).
Metadata = tuple[tuple[str, str], ...]


def open_channels(
    addr: str, count: int, credentials: grpc.ChannelCredentials | None = None
) -> list[grpc.aio.Channel]:
    # A local subchannel pool per channel: otherwise identical channels share one TCP
    # connection, and one connection lands on one server process.
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", 64 << 20)]
    return [open_channel(addr, credentials, options) for _ in range(count)]


def open_channel(
    addr: str, credentials: grpc.ChannelCredentials | None, options: list[tuple[str, int]] | None = None
) -> grpc.aio.Channel:
    """Plaintext, or TLS with services.common.tls.channel_credentials."""
    if credentials is None:
        return grpc.aio.insecure_channel(dial_addr(addr), options=options)
    return grpc.aio.secure_channel(dial_addr(addr), credentials, options=options)


def raw_calls(
    channels: Sequence[grpc.aio.Channel], method: str, metadata: Metadata = ()
) -> list[RawCall]:
    """Bytes in, bytes out; the token goes as metadata on each call (a channel interceptor
    would cost the load generator CPU that a real client need not spend)."""
    calls = [channel.unary_unary(method) for channel in channels]
    return [partial(call, metadata=metadata) for call in calls] if metadata else list(calls)


async def close_channels(channels: Sequence[grpc.aio.Channel]) -> None:
    for channel in channels:
        await channel.close()


async def seed_products(
    addr: str,
    tag: str,
    count: int,
    stock: int,
    credentials: grpc.ChannelCredentials | None = None,
    metadata: Metadata = (),
) -> list[int]:
    async with open_channel(addr, credentials) as channel:
        stub = inventory_service_pb2_grpc.InventoryServiceStub(channel)
        ids = []
        for index in range(count):
            product = await stub.CreateProduct(
                inventory_service_pb2.CreateProductRequest(
                    sku=f"{tag}-{index}",
                    name=f"bench product {index}",
                    price="19.99",
                    initial_stock=stock,
                ),
                timeout=10,
                metadata=metadata,
            )
            ids.append(product.product_id)
        return ids


async def stock_level(
    addr: str,
    product_id: int,
    credentials: grpc.ChannelCredentials | None = None,
    metadata: Metadata = (),
) -> int:
    async with open_channel(addr, credentials) as channel:
        stub = inventory_service_pb2_grpc.InventoryServiceStub(channel)
        reply = await stub.GetStock(
            inventory_service_pb2.GetStockRequest(product_id=product_id), timeout=10, metadata=metadata
        )
        return reply.stock_level


def order_request(
    rng: random.Random, product_ids: Sequence[int], customer: str, request_id: str = ""
) -> orders_service_pb2.CreateOrderRequest:
    """1-3 distinct products, 1-3 of each."""
    chosen = rng.sample(list(product_ids), rng.randint(1, min(3, len(product_ids))))
    return orders_service_pb2.CreateOrderRequest(
        request_id=request_id,
        customer_name=customer,
        items=[orders_service_pb2.CreateOrderItem(product_id=p, quantity=rng.randint(1, 3)) for p in chosen],
    )
