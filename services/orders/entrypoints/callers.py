"""The caller of an RPC, from the principal the authentication interceptor established."""

from __future__ import annotations

from services.common.auth.principal import Principal, Role, current_principal
from services.orders.domain.callers import Caller, CallerRole

# The most privileged role a principal holds decides what it sees.
_ROLES = ((Role.ADMIN, CallerRole.ADMIN), (Role.SERVICE, CallerRole.SERVICE))


def caller_of(principal: Principal) -> Caller:
    for role, caller_role in _ROLES:
        if role in principal.roles:
            return Caller(principal.subject, caller_role)
    return Caller(principal.subject, CallerRole.CUSTOMER)


def current_caller() -> Caller:
    return caller_of(current_principal())
