"""The access policy: every RPC our services define is in the table (a new one fails here
until someone decides who may call it), and the table says what the contract's Roles say."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import services.common.proto as generated
from services.common.auth.policy import POLICY, allowed_roles, is_allowed, is_open
from services.common.auth.principal import Principal, Role

pytestmark = pytest.mark.unit

def _defined_methods() -> set[str]:
    methods = set()
    for module_info in pkgutil.walk_packages(generated.__path__, generated.__name__ + "."):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(module_info.name)
        for service in module.DESCRIPTOR.services_by_name.values():
            methods.update(f"/{service.full_name}/{method.name}" for method in service.methods)
    return methods


def test_every_rpc_of_every_service_has_a_rule() -> None:
    defined = _defined_methods()
    assert len(defined) >= 18, "the generated stubs were not found"
    assert sorted(defined - POLICY.keys()) == []


def test_every_rule_names_an_rpc_that_exists() -> None:
    assert sorted(POLICY.keys() - _defined_methods()) == []


def test_every_rule_allows_someone() -> None:
    assert [method for method, roles in POLICY.items() if not roles] == []


PUBLIC = {
    m for m in POLICY
    if m.startswith(("/fulfillment.inventory.v1.InventoryService/", "/fulfillment.orders.v1.OrderService/"))
}
INTERNAL = POLICY.keys() - PUBLIC
CUSTOMER_RPCS = {
    "/fulfillment.inventory.v1.InventoryService/" + name
    for name in ("GetProduct", "ListProducts", "GetStock")
} | {
    "/fulfillment.orders.v1.OrderService/" + name
    for name in (
        "CreateOrder", "BulkCreateOrders", "GetOrder", "ListOrders", "ListOrderHistory",
        "WatchOrder", "CancelOrder",
    )
}
SERVICE_CALLS = {  # what the worker, the monitor and the orders service call
    "/fulfillment.orders.v1.OrderService/GetOrder",
    "/fulfillment.orders.v1.OrderLifecycleService/AdvanceOrder",
    "/fulfillment.orders.v1.OrderLifecycleService/ClaimStaleOrders",
    "/fulfillment.inventory.v1.ReservationService/ReserveStock",
    "/fulfillment.inventory.v1.ReservationService/ReleaseStock",
    "/fulfillment.inventory.v1.InventoryService/BatchGetProducts",
}


def _callable_by(role: Role) -> set[str]:
    return {method for method in POLICY if role in allowed_roles(method)}


def test_admin_may_call_every_public_rpc_and_no_internal_one() -> None:
    assert _callable_by(Role.ADMIN) == PUBLIC


def test_customer_may_call_exactly_the_contracts_list() -> None:
    assert _callable_by(Role.CUSTOMER) == CUSTOMER_RPCS


def test_service_may_call_the_internal_services_and_the_reads_its_callers_make_only() -> None:
    """Beyond what its callers call, only the catalogue reads any customer may make."""
    catalogue_reads = {
        "/fulfillment.inventory.v1.InventoryService/" + name
        for name in ("GetProduct", "ListProducts", "GetStock")
    }
    assert _callable_by(Role.SERVICE) == INTERNAL | SERVICE_CALLS | catalogue_reads


def test_internal_rpcs_refuse_every_other_role() -> None:
    for method in INTERNAL:
        assert allowed_roles(method) == frozenset({Role.SERVICE}), method


def test_an_rpc_missing_from_the_table_is_refused_to_everyone() -> None:
    everyone = Principal("root", frozenset(Role))
    assert not is_allowed(everyone, "/fulfillment.orders.v1.OrderService/DropAllOrders")
    assert is_allowed(everyone, "/fulfillment.orders.v1.OrderService/GetOrder")
    assert not is_allowed(Principal("nobody", frozenset()), "/fulfillment.orders.v1.OrderService/GetOrder")


@pytest.mark.parametrize(
    ("method", "open_"),
    [
        ("/grpc.health.v1.Health/Check", True),
        ("/grpc.health.v1.Health/Watch", True),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", True),
        ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", True),
        ("/fulfillment.orders.v1.OrderService/GetOrder", False),
        ("/grpc.health.v1.HealthX/Check", False),
        ("grpc.health.v1.Health/Check", False),
        ("/grpc.health.v1/Check", False),
    ],
)
def test_only_health_and_reflection_are_open(method: str, open_: bool) -> None:
    assert is_open(method) is open_
