"""Which role a real caller of a method has, for the tests that call every RPC alike (the
raw-bytes and fuzz tests): the admin for a public RPC, the worker or the orders service (a
`service` caller) for an internal one. tests/auth.py mints the tokens."""

from __future__ import annotations

from google.protobuf.descriptor import MethodDescriptor

from services.common.auth.principal import Role
from services.common.config import Settings
from tests.auth import bearer, token

INTERNAL_SERVICES = frozenset({
    "fulfillment.inventory.v1.ReservationService",
    "fulfillment.orders.v1.OrderLifecycleService",
})  # fmt: skip


def caller_role(method: MethodDescriptor) -> Role:
    internal = method.containing_service.full_name in INTERNAL_SERVICES
    return Role.SERVICE if internal else Role.ADMIN


def bearer_for(settings: Settings, method: MethodDescriptor) -> tuple[tuple[str, str]]:
    """gRPC call metadata with the token of the role that calls `method`."""
    return bearer(settings, caller_role(method))


def authorization_header(settings: Settings, role: Role = Role.ADMIN, subject: str = "") -> dict[str, str]:
    """The HTTP header presenting a token of `role`: what a caller through the gateway sends."""
    return {"Authorization": f"Bearer {token(settings, role, subject)}"}
