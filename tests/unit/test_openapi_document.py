"""The committed OpenAPI document (gateway/static/openapi.json) is valid OpenAPI 3.1 and
describes exactly the contract's routes; the internal services are not in it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from services.common import codegen

pytestmark = pytest.mark.unit

# ARCHITECTURE.md's tables (Public API, HTTP description and console), written out here so
# that a drift in the protos or the plugin fails.
CONTRACT = {
    ("post", "/v1/products"): "InventoryService_CreateProduct",
    ("get", "/v1/products/{product_id}"): "InventoryService_GetProduct",
    ("get", "/v1/products"): "InventoryService_ListProducts",
    ("post", "/v1/products/{product_id}/stock"): "InventoryService_SetStock",
    ("post", "/v1/products/{product_id}/stock:adjust"): "InventoryService_AdjustStock",
    ("get", "/v1/products/{product_id}/stock"): "InventoryService_GetStock",
    ("post", "/v1/orders"): "OrderService_CreateOrder",
    ("post", "/v1/orders:bulkCreate"): "OrderService_BulkCreateOrders",
    ("get", "/v1/orders/{order_id}"): "OrderService_GetOrder",
    ("get", "/v1/orders"): "OrderService_ListOrders",
    ("get", "/v1/orders/{order_id}/history"): "OrderService_ListOrderHistory",
    ("post", "/v1/orders/{order_id}:cancel"): "OrderService_CancelOrder",
    ("get", "/v1/orders/{order_id}:watch"): "OrderService_WatchOrder",
    ("get", "/v1/orders:summarize"): "OrderService_SummarizeOrders",
    ("get", "/openapi.json"): "OpenApiDocument",
}
# Routed too, beyond the contract's tables.
EXTRA = {("get", "/v1/products:batchGet"): "InventoryService_BatchGetProducts"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(codegen.OPENAPI_DOCUMENT.read_text())


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (verb, path): operation
        for path, verbs in document["paths"].items()
        for verb, operation in verbs.items()
    }


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_of_the_contract_is_there_with_its_method_and_nothing_else(document) -> None:
    found = {key: operation["operationId"] for key, operation in operations(document).items()}
    assert found == {**CONTRACT, **EXTRA}


def test_each_operation_is_tagged_with_its_service(document: dict[str, Any]) -> None:
    for operation in operations(document).values():
        assert operation["tags"] == [operation["operationId"].split("_")[0]] or (
            operation["tags"] == ["Documentation"]
        )
    assert [tag["name"] for tag in document["tags"]] == ["Documentation", "InventoryService", "OrderService"]


def test_internal_services_and_their_messages_are_absent(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    for internal in (
        "ReservationService", "ReserveStock", "ReleaseStock", "ReservationItem",
        "OrderLifecycleService", "AdvanceOrder", "ClaimStaleOrders", "StaleOrder",
    ):
        assert internal not in text


def test_summarize_answers_counts_by_status_to_admins(document: dict[str, Any]) -> None:
    summarize = document["paths"]["/v1/orders:summarize"]["get"]
    reply = summarize["responses"]["200"]["content"]["application/json"]["schema"]
    assert reply == {"$ref": "#/components/schemas/fulfillment.orders.v1.SummarizeOrdersResponse"}
    counts = document["components"]["schemas"]["fulfillment.orders.v1.SummarizeOrdersResponse"][
        "properties"]["counts"]
    assert counts["type"] == "object" and counts["additionalProperties"]["format"] == "int64"
    assert "Admins only" in summarize["description"]


def test_the_status_filter_is_the_status_enum(document: dict[str, Any]) -> None:
    (status,) = [
        p for p in document["paths"]["/v1/orders"]["get"]["parameters"] if p["name"] == "status"
    ]
    assert status["in"] == "query"
    assert status["schema"] == {"$ref": "#/components/schemas/fulfillment.orders.v1.Order.Status"}
    assert document["components"]["schemas"]["fulfillment.orders.v1.Order.Status"]["enum"] == [
        "STATUS_UNSPECIFIED", "PENDING", "PROCESSING", "PACKAGING", "SHIPPED", "DELIVERED",
        "CANCELED", "FAILED",
    ]


def test_bulk_results_carry_a_google_rpc_status(document: dict[str, Any]) -> None:
    result = document["components"]["schemas"]["fulfillment.orders.v1.BulkCreateOrderResult"]
    assert result["properties"]["status"]["$ref"] == "#/components/schemas/google.rpc.Status"
    bulk = document["paths"]["/v1/orders:bulkCreate"]["post"]
    assert bulk["requestBody"]["content"]["application/json"]["schema"]["type"] == "array"
    assert bulk["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/fulfillment.orders.v1.BulkCreateOrderResult"},
    }
