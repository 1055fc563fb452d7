"""Tokens and authorized channels for the tests: every call the suite makes presents a
token signed with the test run's own key, as a real caller's would be."""

from __future__ import annotations

from functools import cache

import grpc

from services.common.auth.client_interceptors import AuthClientInterceptor, aio_auth_interceptors
from services.common.auth.mint import TokenMinter
from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.security import server_security
from services.common.server import ServerSecurity

ADMIN = "test-admin"
SERVICE = "test-service"
TOKEN_TTL_S = 6 * 3600


@cache
def _minter(signing_key: str, issuer: str, audience: str, roles_claim: str) -> TokenMinter:
    settings = Settings.from_env(
        {
            "FULFILLMENT_AUTH_SIGNING_KEY": signing_key,
            "FULFILLMENT_AUTH_ISSUER": issuer,
            "FULFILLMENT_AUTH_AUDIENCE": audience,
            "FULFILLMENT_AUTH_ROLES_CLAIM": roles_claim,
        }
    )
    return TokenMinter(settings)


@cache
def token(settings: Settings, role: Role = Role.ADMIN, subject: str = "") -> str:
    """A token for `subject` (default: the test admin or service) with one role."""
    subject = subject or {Role.ADMIN: ADMIN, Role.SERVICE: SERVICE}.get(role, f"test-{role.value}")
    minter = _minter(
        settings.auth_signing_key, settings.auth_issuer, settings.auth_audience,
        settings.auth_roles_claim,
    )
    return minter.mint([role], subject, TOKEN_TTL_S)


def bearer(settings: Settings, role: Role = Role.ADMIN, subject: str = "") -> tuple[tuple[str, str]]:
    """gRPC call metadata presenting that token."""
    return (("authorization", f"Bearer {token(settings, role, subject)}"),)


def authorized(
    channel: grpc.Channel, settings: Settings, role: Role = Role.ADMIN, subject: str = ""
) -> grpc.Channel:
    """`channel` with every call presenting a token of `role`."""
    value = token(settings, role, subject)
    return grpc.intercept_channel(channel, AuthClientInterceptor(lambda: value))


def authorized_channel(
    addr: str, settings: Settings, role: Role = Role.ADMIN, subject: str = ""
) -> grpc.Channel:
    return authorized(grpc.insecure_channel(addr), settings, role, subject)


def authorized_aio_channel(
    addr: str, settings: Settings, role: Role = Role.ADMIN, subject: str = ""
) -> grpc.aio.Channel:
    value = token(settings, role, subject)
    return grpc.aio.insecure_channel(addr, interceptors=aio_auth_interceptors(lambda: value))


def secured_by(settings: Settings) -> ServerSecurity:
    """What a test's in-process server admits callers with: the real interceptor."""
    return server_security(settings, "test")
