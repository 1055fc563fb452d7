"""Page tokens are signed with a secret every replica of a service shares: a token one
server process issued is accepted by another, and refused by a deployment with another
secret."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import grpc
import psycopg2
import pytest

from services.common.config import Settings
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as inv
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2_grpc as inv_grpc
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2_grpc as orders_grpc
from services.migrations import migrate_all
from tests.auth import authorized
from tests.support import Process, free_port, fulfillment_command, private_database, wait_healthy

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def token_database() -> Iterator[str]:
    """A database of its own: the rows these tests seed are seen by nobody else."""
    with private_database("fulfillment_tokens") as url:
        yield url


def _serve(
    service: str,
    env: dict[str, str],
    settings: Settings,
    log_dir: Path,
    stack: ExitStack,
    secrets: list[str],
) -> list[grpc.Channel]:
    """One `fulfillment serve <service>` process per entry of `secrets` (the
    FULFILLMENT_PAGE_TOKEN_SECRET it gets, "" for none), started together, each healthy;
    they stop, and their channels (an admin's, with a token signed by `settings`' key)
    close, with `stack`."""
    address_variable = "INVENTORY_ADDR" if service == "inventory" else "ORDERS_ADDR"
    started = []
    for index, secret in enumerate(secrets):
        addr = f"127.0.0.1:{free_port()}"
        process_env = {**env, address_variable: addr, "FULFILLMENT_PAGE_TOKEN_SECRET": secret}
        command = fulfillment_command("serve", service)
        log = log_dir / f"{service}-{index}.log"
        started.append((addr, stack.enter_context(Process(command, process_env, log))))
    for addr, process in started:
        try:
            wait_healthy(addr, timeout=30)
        except TimeoutError:
            raise AssertionError(process.output()[-3000:]) from None
    return [
        authorized(stack.enter_context(grpc.insecure_channel(addr)), settings)
        for addr, _ in started
    ]


def _stored_secrets(database_url: str) -> list[bytes]:
    connection = psycopg2.connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT secret FROM inventory.page_token_secret"
                " UNION ALL SELECT secret FROM orders.page_token_secret"
            )
            return [bytes(secret) for (secret,) in cursor.fetchall()]
    finally:
        connection.close()


def test_the_secret_is_created_once_per_service_and_kept_by_later_migrations(
    token_database: str,
) -> None:
    inventory_secret, orders_secret = _stored_secrets(token_database)
    assert len(inventory_secret) == 32 and len(orders_secret) == 32
    assert inventory_secret != orders_secret
    migrate_all(
        replace(
            Settings.from_env({}),
            inventory_database_url=token_database,
            orders_database_url=token_database,
        )
    )
    assert _stored_secrets(token_database) == [inventory_secret, orders_secret]


def _seed_orders(database_url: str, count: int) -> None:
    connection = psycopg2.connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            for _ in range(count):
                cursor.execute(
                    "INSERT INTO orders.orders (order_id, customer_name, customer_id, status,"
                    " create_time, update_time)"
                    " VALUES (%s, 'token test', 'token-test', 'DELIVERED', now(), now())",
                    (str(uuid.uuid4()),),
                )
    finally:
        connection.close()


def test_an_inventory_page_token_from_one_process_is_accepted_by_another(
    service_env: dict[str, str], settings: Settings, token_database: str, tmp_path: Path
) -> None:
    env = {**service_env, "DATABASE_URL": token_database}
    with ExitStack() as stack:
        first, second, other_deployment = _serve(
            "inventory", env, settings, tmp_path, stack, ["", "", "another deployment's secret"]
        )
        for _ in range(3):
            inv_grpc.InventoryServiceStub(first).CreateProduct(
                inv.CreateProductRequest(
                    sku=f"token-{uuid.uuid4().hex[:10]}", name="p", price="1.00"
                ),
                timeout=10,
            )
        page = inv_grpc.InventoryServiceStub(first).ListProducts(
            inv.ListProductsRequest(page_size=1), timeout=10
        )
        assert page.next_page_token
        following = inv_grpc.InventoryServiceStub(second).ListProducts(
            inv.ListProductsRequest(page_size=1, page_token=page.next_page_token), timeout=10
        )
        assert following.products[0].product_id > page.products[0].product_id

        with pytest.raises(grpc.RpcError) as refused:
            inv_grpc.InventoryServiceStub(other_deployment).ListProducts(
                inv.ListProductsRequest(page_size=1, page_token=page.next_page_token), timeout=10
            )
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in (refused.value.details() or "")


def test_an_orders_page_token_from_one_process_is_accepted_by_another(
    service_env: dict[str, str], settings: Settings, token_database: str, tmp_path: Path
) -> None:
    env = {**service_env, "DATABASE_URL": token_database}
    _seed_orders(token_database, 3)
    with ExitStack() as stack:
        first, second = _serve("orders", env, settings, tmp_path, stack, ["", ""])
        request = orders_pb2.ListOrdersRequest(page_size=1, customer_name="token test")
        page = orders_grpc.OrderServiceStub(first).ListOrders(request, timeout=10)
        assert page.next_page_token
        request.page_token = page.next_page_token
        following = orders_grpc.OrderServiceStub(second).ListOrders(request, timeout=10)
        assert len(following.orders) == 1
        assert following.orders[0].order_id != page.orders[0].order_id
