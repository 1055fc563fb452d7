"""Who may call what: every RPC of our four services -> the roles allowed to call it.

Deny unless a rule allows: a method missing here is refused to every role, so a new RPC
stays closed until someone decides who may call it (tests/unit/test_auth_policy.py
fails until then). Whose orders a customer may touch is the orders service's own rule,
not this table's. The `service` role gets the internal services and only the public reads
its callers make: the worker GetOrder, the orders service BatchGetProducts, plus the
catalogue reads any customer may make anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from services.common.auth.principal import Principal, Role

A, C, S = Role.ADMIN, Role.CUSTOMER, Role.SERVICE

INVENTORY = "/fulfillment.inventory.v1.InventoryService/"
RESERVATIONS = "/fulfillment.inventory.v1.ReservationService/"  # internal
ORDERS = "/fulfillment.orders.v1.OrderService/"
LIFECYCLE = "/fulfillment.orders.v1.OrderLifecycleService/"  # internal

POLICY: Mapping[str, frozenset[Role]] = MappingProxyType({
    INVENTORY + "CreateProduct":      frozenset({A}),
    INVENTORY + "GetProduct":         frozenset({A, C, S}),
    INVENTORY + "ListProducts":       frozenset({A, C, S}),
    INVENTORY + "BatchGetProducts":   frozenset({A, S}),
    INVENTORY + "SetStock":           frozenset({A}),
    INVENTORY + "AdjustStock":        frozenset({A}),
    INVENTORY + "GetStock":           frozenset({A, C, S}),
    RESERVATIONS + "ReserveStock":    frozenset({S}),
    RESERVATIONS + "ReleaseStock":    frozenset({S}),
    ORDERS + "CreateOrder":           frozenset({A, C}),
    ORDERS + "BulkCreateOrders":      frozenset({A, C}),
    ORDERS + "GetOrder":              frozenset({A, C, S}),
    ORDERS + "ListOrders":            frozenset({A, C}),
    ORDERS + "ListOrderHistory":      frozenset({A, C}),
    ORDERS + "CancelOrder":           frozenset({A, C}),
    ORDERS + "WatchOrder":            frozenset({A, C}),
    ORDERS + "SummarizeOrders":       frozenset({A}),
    LIFECYCLE + "AdvanceOrder":       frozenset({S}),
    LIFECYCLE + "ClaimStaleOrders":   frozenset({S}),
})  # fmt: skip

# Callable without a token: load balancers and probes ask health, grpcurl asks reflection.
OPEN_SERVICES = frozenset({
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
})  # fmt: skip


def is_open(method: str) -> bool:
    """`method` is a full method name as gRPC gives it: /package.Service/Method."""
    service, _, _ = method.removeprefix("/").partition("/")
    return method.startswith("/") and service in OPEN_SERVICES


def allowed_roles(method: str) -> frozenset[Role]:
    return POLICY.get(method, frozenset())


def is_allowed(principal: Principal, method: str) -> bool:
    return not principal.roles.isdisjoint(allowed_roles(method))
