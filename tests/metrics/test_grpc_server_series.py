"""grpc_server_handled_total and grpc_server_handling_seconds on real servers: every RPC
once, by method and code, refused calls included, streams when they end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as inventory_pb2
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2_grpc
from services.common.server import ServiceParts, start_server
from tests.auth import authorized_channel
from tests.metrics.scrape import Scrape, delta
from tests.orders.integration.clients import Clients, rpc_code
from tests.support import BackgroundServer

pytestmark = pytest.mark.integration

INVENTORY = "fulfillment.inventory.v1.InventoryService"
HANDLED = "grpc_server_handled_total"
HANDLING_COUNT = "grpc_server_handling_seconds_count"


def test_successful_calls_count_ok_and_their_latency_once_each(
    clients: Clients, read_metrics: Callable[[], Scrape]
) -> None:
    before = read_metrics()
    for _ in range(7):
        clients.create_product()
    after = read_metrics()

    labels = {"grpc_service": INVENTORY, "grpc_method": "CreateProduct"}
    assert delta(before, after, HANDLED, **labels, grpc_code="OK") == 7
    assert delta(before, after, HANDLING_COUNT, **labels) == 7
    assert after.types[HANDLED] == "counter"
    assert after.types[HANDLING_COUNT] == "histogram"
    buckets = after.named("grpc_server_handling_seconds_bucket")
    ours = [v for labels, v in buckets.items() if ("grpc_method", "CreateProduct") in labels]
    assert len(ours) > 5, "a latency histogram with buckets"
    # The contract's label sets, and nothing more.
    for labels in after.named(HANDLED):
        assert {name for name, _ in labels} == {"grpc_service", "grpc_method", "grpc_code"}
    for labels in after.named(HANDLING_COUNT):
        assert {name for name, _ in labels} == {"grpc_service", "grpc_method"}


def test_errors_are_counted_with_their_code(
    clients: Clients, read_metrics: Callable[[], Scrape]
) -> None:
    bad_price = inventory_pb2.CreateProductRequest(sku=f"m-{uuid.uuid4().hex[:10]}", name="p", price="abc")
    before = read_metrics()
    code = rpc_code(lambda: clients.inventory.CreateProduct(bad_price, timeout=10))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    after = read_metrics()

    labels = {"grpc_service": INVENTORY, "grpc_method": "CreateProduct"}
    assert delta(before, after, HANDLED, **labels, grpc_code="INVALID_ARGUMENT") == 1
    assert delta(before, after, HANDLED, **labels, grpc_code="OK") == 0
    assert delta(before, after, HANDLING_COUNT, **labels) == 1


def test_calls_refused_by_authentication_and_policy_are_counted(
    inventory_server: BackgroundServer, settings: Settings, read_metrics: Callable[[], Scrape]
) -> None:
    request = inventory_pb2.CreateProductRequest(sku=f"m-{uuid.uuid4().hex[:10]}", name="p", price="1.00")
    before = read_metrics()
    with grpc.insecure_channel(inventory_server.addr) as anonymous:
        stub = inventory_service_pb2_grpc.InventoryServiceStub(anonymous)
        assert rpc_code(lambda: stub.CreateProduct(request, timeout=10)) is grpc.StatusCode.UNAUTHENTICATED
    with authorized_channel(inventory_server.addr, settings, Role.CUSTOMER) as customer:
        stub = inventory_service_pb2_grpc.InventoryServiceStub(customer)
        assert rpc_code(lambda: stub.CreateProduct(request, timeout=10)) is grpc.StatusCode.PERMISSION_DENIED
    after = read_metrics()

    labels = {"grpc_service": INVENTORY, "grpc_method": "CreateProduct"}
    assert delta(before, after, HANDLED, **labels, grpc_code="UNAUTHENTICATED") == 1
    assert delta(before, after, HANDLED, **labels, grpc_code="PERMISSION_DENIED") == 1


def test_a_method_the_server_does_not_have_makes_no_series(
    inventory_server: BackgroundServer, read_metrics: Callable[[], Scrape]
) -> None:
    with grpc.insecure_channel(inventory_server.addr) as channel:
        guess = channel.unary_unary(f"/{INVENTORY}/NoSuchMethod")
        assert rpc_code(lambda: guess(b"", timeout=10)) is grpc.StatusCode.UNIMPLEMENTED
    assert not any(
        ("grpc_method", "NoSuchMethod") in labels for labels in read_metrics().named(HANDLED)
    )


def _health_only(server: grpc.aio.Server) -> Sequence[str]:
    return ()


async def _check_health(times: int, metrics: bool) -> None:
    running = await start_server("127.0.0.1:0", ServiceParts(register=_health_only), metrics=metrics)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            for _ in range(times):
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    finally:
        await running.stop(0)


@pytest.mark.parametrize("metrics_on", [True, False])
def test_a_server_counts_its_rpcs_only_with_metrics_on(
    metrics_on: bool, read_metrics: Callable[[], Scrape]
) -> None:
    labels = {"grpc_service": "grpc.health.v1.Health", "grpc_method": "Check", "grpc_code": "OK"}
    before = read_metrics()
    asyncio.run(_check_health(3, metrics_on))
    assert delta(before, read_metrics(), HANDLED, **labels) == (3 if metrics_on else 0)
