"""Authentication and the access policy on every server: one interceptor.

Register it first (outermost), before the error-mapping interceptor: a caller without a
valid token never has its request decoded. The client side is client_interceptors.py.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NoReturn

import grpc

from services.common.auth.key_set import KeysUnavailable
from services.common.auth.policy import POLICY, is_open
from services.common.auth.principal import Principal, Role, set_current_principal
from services.common.auth.verify import InvalidToken, TokenVerifier, bearer_token
from services.common.config import Settings
from services.common.handlers import WrappedHandlers, with_behavior
from services.common.logs import log_event

logger = logging.getLogger("fulfillment.auth")

Admit = Callable[[grpc.aio.ServicerContext], Awaitable[None]]


def log_auth_mode(settings: Settings, part_name: str) -> None:
    """One line at start: loud when authentication is off, so nobody mistakes it."""
    if not settings.auth_enabled:
        log_event(
            logger, "auth_off", logging.WARNING, part=part_name,
            warning="FULFILLMENT_AUTH=off: every call is accepted, without a token, as an "
            "anonymous admin; for local experiments only, never on a reachable address",
        )
        return
    log_event(
        logger, "auth_on", part=part_name, issuer=settings.auth_issuer,
        audience=settings.auth_audience, jwks=settings.auth_jwks or "local key set",
    )


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Admits a call to a handler only with a valid token whose roles the policy allows,
    and sets its Principal (current_principal()) for the handler.

    The check runs inside the wrapped handler, so the principal is set in the RPC's own
    task, where the handler and anything it awaits read it, for every kind of RPC.
    Health and reflection pass untouched. Without a verifier (FULFILLMENT_AUTH=off) every
    call acts as the anonymous admin, and nothing is logged per call.
    """

    def __init__(
        self, verifier: TokenVerifier | None, policy: Mapping[str, frozenset[Role]] = POLICY
    ) -> None:
        self._verifier = verifier
        self._policy = policy
        self._handlers = WrappedHandlers()

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthInterceptor:
        """Reads the key set now when auth is on (a missing JWKS file fails the start)."""
        return cls(TokenVerifier.from_settings(settings) if settings.auth_enabled else None)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or is_open(method):
            return handler
        return self._handlers.get(
            method, handler,
            lambda h: with_behavior(h, lambda behavior: _admitted(behavior, self._admission(method))),
        )

    def _admission(self, method: str) -> Admit:
        verifier, allowed = self._verifier, self._policy.get(method, frozenset())

        if verifier is None:
            async def admit_anyone(_context: grpc.aio.ServicerContext) -> None:
                set_current_principal(Principal.anonymous_admin())

            return admit_anyone

        async def admit(context: grpc.aio.ServicerContext) -> None:
            try:
                principal = await verifier.verify_async(bearer_token(context.invocation_metadata()))
            except InvalidToken as exc:
                await _refuse(context, method, grpc.StatusCode.UNAUTHENTICATED, str(exc))
            except KeysUnavailable:
                # Our problem, not the caller's: the key set is being retried (KeySet logs it).
                await _refuse(
                    context, method, grpc.StatusCode.UNAVAILABLE,
                    "the keys that verify tokens cannot be read right now; try again shortly",
                )
            if principal.roles.isdisjoint(allowed):
                await _refuse(context, method, grpc.StatusCode.PERMISSION_DENIED, _denial(principal, allowed))
            set_current_principal(principal)

        return admit


def _denial(principal: Principal, allowed: frozenset[Role]) -> str:
    held = ", ".join(sorted(role.value for role in principal.roles)) or "no role of ours"
    if not allowed:
        return f"no role may call this method (the caller has {held})"
    needed = " or ".join(sorted(role.value for role in allowed))
    return f"this call needs the role {needed}; the caller has {held}"


async def _refuse(
    context: grpc.aio.ServicerContext, method: str, code: grpc.StatusCode, message: str
) -> NoReturn:
    log_event(logger, "rpc_refused", method=method, code=code.name, reason=message)
    await context.abort(code, message)
    raise AssertionError("context.abort returned instead of raising")


def _admitted(behavior: Callable[..., Any], admit: Admit) -> Callable[..., Any]:
    # grpc.aio tells a response generator from a coroutine that writes its responses
    # (grpc.health's Watch) by the function itself, so the wrapper keeps the kind.
    if inspect.isasyncgenfunction(behavior):

        async def admitted_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await admit(context)
            async for response in behavior(request, context):
                yield response

        return admitted_stream

    async def admitted(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await admit(context)
        result = behavior(request, context)
        # Servicers are async; a sync one (a generated base method) answers directly.
        return await result if inspect.isawaitable(result) else result

    return admitted

