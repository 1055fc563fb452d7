"""The committed stubs, descriptor set and OpenAPI document must be what protos/
generates today."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from services.common import codegen

pytestmark = pytest.mark.unit


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_committed_stubs_descriptor_set_and_openapi_document_match_protos(tmp_path: Path) -> None:
    stubs, descriptor_set = tmp_path / "proto", tmp_path / "fulfillment.pb"
    openapi = tmp_path / "openapi.json"
    codegen.generate(stubs, descriptor_set, openapi)

    fresh, committed = _tree(stubs), _tree(codegen.STUBS_DIR)
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, f"stubs are stale, run `uv run fulfillment codegen`: {stale}"
    assert filecmp.cmp(descriptor_set, codegen.DESCRIPTOR_SET, shallow=False), (
        "gateway/fulfillment.pb is stale, run `uv run fulfillment codegen`"
    )
    assert openapi.read_bytes() == codegen.OPENAPI_DOCUMENT.read_bytes(), (
        "gateway/static/openapi.json is stale, run `uv run fulfillment codegen`"
    )


def test_descriptor_set_includes_imports_for_envoy() -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(codegen.DESCRIPTOR_SET.read_bytes())
    names = {f.name for f in files.file}
    assert {
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/protobuf/timestamp.proto",
        "google/rpc/status.proto",
        "google/rpc/error_details.proto",
        "fulfillment/inventory/v1/inventory_service.proto",
        "fulfillment/orders/v1/orders_service.proto",
    } <= names


def test_public_http_bindings_match_the_contract() -> None:
    from google.api import annotations_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(codegen.DESCRIPTOR_SET.read_bytes())
    bindings = {}
    for file in files.file:
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                if verb:
                    bindings[f"{service.name}.{method.name}"] = (
                        verb.upper(), getattr(rule, verb), rule.body
                    )
    assert bindings == {
        "InventoryService.CreateProduct": ("POST", "/v1/products", "*"),
        "InventoryService.GetProduct": ("GET", "/v1/products/{product_id}", ""),
        "InventoryService.ListProducts": ("GET", "/v1/products", ""),
        "InventoryService.BatchGetProducts": ("GET", "/v1/products:batchGet", ""),
        "InventoryService.SetStock": ("POST", "/v1/products/{product_id}/stock", "*"),
        "InventoryService.AdjustStock": ("POST", "/v1/products/{product_id}/stock:adjust", "*"),
        "InventoryService.GetStock": ("GET", "/v1/products/{product_id}/stock", ""),
        "OrderService.CreateOrder": ("POST", "/v1/orders", "*"),
        "OrderService.BulkCreateOrders": ("POST", "/v1/orders:bulkCreate", "*"),
        "OrderService.GetOrder": ("GET", "/v1/orders/{order_id}", ""),
        "OrderService.ListOrders": ("GET", "/v1/orders", ""),
        "OrderService.ListOrderHistory": ("GET", "/v1/orders/{order_id}/history", ""),
        "OrderService.CancelOrder": ("POST", "/v1/orders/{order_id}:cancel", "*"),
        "OrderService.WatchOrder": ("GET", "/v1/orders/{order_id}:watch", ""),
        "OrderService.SummarizeOrders": ("GET", "/v1/orders:summarize", ""),
    }
