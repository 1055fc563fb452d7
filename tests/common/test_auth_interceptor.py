"""The auth interceptor on a real loopback grpc.aio server (echo handlers that answer with
the principal they see, no database), in front of the error-mapping interceptor as the
server bootstrap registers them; and the client interceptors that add the token."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from services.common.auth.client_interceptors import AuthClientInterceptor, aio_auth_interceptors
from services.common.auth.interceptors import AuthInterceptor, log_auth_mode
from services.common.auth.key_set import KeySet
from services.common.auth.mint import TokenMinter
from services.common.auth.policy import POLICY
from services.common.auth.principal import Role, current_principal
from services.common.auth.verify import TokenVerifier
from services.common.config import Settings
from services.common.grpc_errors import ErrorMappingInterceptor
from tests.auth_tokens import assert_never_quoted, auth_settings, claims, local_key, sign

pytestmark = pytest.mark.integration

T = TypeVar("T")
A, C, S = Role.ADMIN, Role.CUSTOMER, Role.SERVICE
Message = health_pb2.HealthCheckRequest  # any message with a string field will do
ECHO = "/test.Echo/"
RESERVE = "/fulfillment.inventory.v1.ReservationService/ReserveStock"
TEST_POLICY = {
    **POLICY,
    ECHO + "Whoami": frozenset({A, C, S}),
    ECHO + "AdminOnly": frozenset({A}),
    ECHO + "WhoamiStream": frozenset({A, C}),
    ECHO + "Collect": frozenset({A, C}),
    ECHO + "Chat": frozenset({A, C}),
}


async def _whoami(request: Message, context: grpc.aio.ServicerContext) -> Message:
    await asyncio.sleep(0.01)  # other calls run meanwhile: the principal must stay ours
    return Message(service=current_principal().actor)


async def _whoami_stream(request: Message, context: grpc.aio.ServicerContext) -> AsyncIterator[Message]:
    for _ in range(2):
        await asyncio.sleep(0)
        yield Message(service=current_principal().actor)


async def _collect(requests: AsyncIterator[Message], context: grpc.aio.ServicerContext) -> Message:
    received = [request.service async for request in requests]
    return Message(service=f"{current_principal().actor}:{','.join(received)}")


async def _chat(
    requests: AsyncIterator[Message], context: grpc.aio.ServicerContext
) -> AsyncIterator[Message]:
    async for request in requests:
        yield Message(service=f"{current_principal().actor}:{request.service}")


def _register(server: grpc.aio.Server) -> None:
    codec = {"request_deserializer": Message.FromString, "response_serializer": Message.SerializeToString}
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler("test.Echo", {
            "Whoami": grpc.unary_unary_rpc_method_handler(_whoami, **codec),
            "AdminOnly": grpc.unary_unary_rpc_method_handler(_whoami, **codec),
            "Unlisted": grpc.unary_unary_rpc_method_handler(_whoami, **codec),
            "WhoamiStream": grpc.unary_stream_rpc_method_handler(_whoami_stream, **codec),
            "Collect": grpc.stream_unary_rpc_method_handler(_collect, **codec),
            "Chat": grpc.stream_stream_rpc_method_handler(_chat, **codec),
        }),
        # An internal RPC under its real name, judged by the real table.
        grpc.method_handlers_generic_handler("fulfillment.inventory.v1.ReservationService", {
            "ReserveStock": grpc.unary_unary_rpc_method_handler(_whoami, **codec),
        }),
    ])


@dataclass
class Echo:
    channel: grpc.aio.Channel
    target: str

    async def call(self, method: str, token: str | None = None, request: bytes | None = None) -> str:
        metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
        body = Message(service="hi").SerializeToString() if request is None else request
        reply = await self.channel.unary_unary(ECHO + method if "/" not in method else method)(
            body, metadata=metadata, timeout=10
        )
        return Message.FromString(reply).service

    async def refusal(
        self, method: str, token: str | None = None, request: bytes | None = None
    ) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await self.call(method, token, request)
        return failure.value


def _against_server(interceptor: AuthInterceptor, scenario: Callable[[Echo], Awaitable[T]]) -> T:
    async def run() -> T:
        server = grpc.aio.server(interceptors=[interceptor, ErrorMappingInterceptor()])
        _register(server)
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        reflection.enable_server_reflection(["test.Echo", reflection.SERVICE_NAME], server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return await asyncio.wait_for(scenario(Echo(channel, f"127.0.0.1:{port}")), timeout=30)
        finally:
            await server.stop(0)

    return asyncio.run(run())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return auth_settings(tmp_path)


@pytest.fixture
def interceptor(settings: Settings) -> AuthInterceptor:
    return AuthInterceptor(TokenVerifier.from_settings(settings), TEST_POLICY)


@pytest.fixture
def tokens(settings: Settings) -> Callable[..., str]:
    minter = TokenMinter(settings)

    def token(*roles: Role, subject: str = "u1") -> str:
        return minter.mint(roles, subject, 300)

    return token


@pytest.fixture
def auth_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger="fulfillment.auth")
    yield caplog


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)


def test_a_valid_token_reaches_the_handler_with_its_principal(
    interceptor: AuthInterceptor, tokens: Callable[..., str]
) -> None:
    async def scenario(echo: Echo) -> list[str]:
        return [
            await echo.call("Whoami", tokens(C, subject="alice")),
            await echo.call("Whoami", tokens(S, subject="worker")),
            await echo.call("AdminOnly", tokens(A, C, subject="ops")),
        ]

    assert _against_server(interceptor, scenario) == ["customer:alice", "service:worker", "admin:ops"]


def test_concurrent_calls_each_see_their_own_principal(
    interceptor: AuthInterceptor, tokens: Callable[..., str]
) -> None:
    async def scenario(echo: Echo) -> list[str]:
        return await asyncio.gather(*(echo.call("Whoami", tokens(C, subject=f"c{i}")) for i in range(40)))

    assert _against_server(interceptor, scenario) == [f"customer:c{i}" for i in range(40)]


def test_streaming_handlers_see_the_principal_too(
    interceptor: AuthInterceptor, tokens: Callable[..., str]
) -> None:
    metadata = (("authorization", f"Bearer {tokens(C, subject='bob')}"),)
    requests = [Message(service=word).SerializeToString() for word in ("a", "b")]

    async def scenario(echo: Echo) -> tuple[list[str], str, list[str]]:
        served = echo.channel.unary_stream(ECHO + "WhoamiStream")(b"", metadata=metadata, timeout=10)
        collected = await echo.channel.stream_unary(ECHO + "Collect")(
            iter(requests), metadata=metadata, timeout=10
        )
        chat = echo.channel.stream_stream(ECHO + "Chat")(iter(requests), metadata=metadata, timeout=10)
        return (
            [Message.FromString(m).service async for m in served],
            Message.FromString(collected).service,
            [Message.FromString(m).service async for m in chat],
        )

    served, collected, chat = _against_server(interceptor, scenario)
    assert served == ["customer:bob", "customer:bob"]
    assert collected == "customer:bob:a,b"
    assert chat == ["customer:bob:a", "customer:bob:b"]


def test_streams_without_a_token_are_unauthenticated(interceptor: AuthInterceptor) -> None:
    async def scenario(echo: Echo) -> list[grpc.StatusCode]:
        codes = []
        for call in (
            lambda: echo.channel.unary_stream(ECHO + "WhoamiStream")(b"", timeout=10),
            lambda: echo.channel.stream_stream(ECHO + "Chat")(iter([b""]), timeout=10),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                [m async for m in call()]
            codes.append(failure.value.code())
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await echo.channel.stream_unary(ECHO + "Collect")(iter([b""]), timeout=10)
        return [*codes, failure.value.code()]

    assert _against_server(interceptor, scenario) == [grpc.StatusCode.UNAUTHENTICATED] * 3


def test_bad_tokens_are_unauthenticated_in_plain_words_never_echoed(
    settings: Settings, interceptor: AuthInterceptor, auth_logs: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    key = local_key(settings)
    bad = {
        "missing": (None, "needs a bearer token"),
        "malformed": ("not-a-jwt", "malformed"),
        "expired": (sign(key, claims(iat=now - 900, nbf=now - 900, exp=now - 600)), "expired"),
        "issuer": (sign(key, claims(iss="https://evil.example")), "issuer"),
        "audience": (sign(key, claims(aud="billing")), "audience"),
        "unsigned": (sign(key, claims())[:-10] + "AAAAAAAAAA", "signature"),
    }

    async def scenario(echo: Echo) -> dict[str, grpc.aio.AioRpcError]:
        return {name: await echo.refusal("Whoami", token) for name, (token, _) in bad.items()}

    refusals = _against_server(interceptor, scenario)
    for name, (token, reason) in bad.items():
        error = refusals[name]
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED, name
        details = error.details() or ""
        assert reason in details, (name, details)
        assert "Traceback" not in details
        if token:
            assert_never_quoted(details, token)
            assert_never_quoted(_logged(auth_logs), token)


def test_a_role_the_policy_does_not_allow_is_permission_denied(
    interceptor: AuthInterceptor, tokens: Callable[..., str]
) -> None:
    async def scenario(echo: Echo) -> list[grpc.aio.AioRpcError]:
        return [
            await echo.refusal("AdminOnly", tokens(C)),
            await echo.refusal("Unlisted", tokens(A, C, S)),
            await echo.refusal("Whoami", tokens()),  # a valid token with no role of ours
        ]

    admin_only, unlisted, roleless = _against_server(interceptor, scenario)
    assert {e.code() for e in (admin_only, unlisted, roleless)} == {grpc.StatusCode.PERMISSION_DENIED}
    assert admin_only.details() == "this call needs the role admin; the caller has customer"
    assert (unlisted.details() or "").startswith("no role may call this method")
    assert "no role of ours" in (roleless.details() or "")


def test_internal_rpcs_admit_the_service_role_only(
    interceptor: AuthInterceptor, tokens: Callable[..., str]
) -> None:
    async def scenario(echo: Echo) -> tuple[str, list[grpc.StatusCode]]:
        allowed = await echo.call(RESERVE, tokens(S, subject="worker"))
        refused = [(await echo.refusal(RESERVE, tokens(role))).code() for role in (A, C)]
        return allowed, refused

    allowed, refused = _against_server(interceptor, scenario)
    assert allowed == "service:worker"
    assert refused == [grpc.StatusCode.PERMISSION_DENIED] * 2


def test_a_request_is_decoded_only_after_the_caller_is_authenticated(
    interceptor: AuthInterceptor, tokens: Callable[..., str]
) -> None:
    async def scenario(echo: Echo) -> list[grpc.StatusCode]:
        return [
            (await echo.refusal("Whoami", None, b"\x00")).code(),
            (await echo.refusal("Whoami", tokens(C), b"\x00")).code(),
        ]

    assert _against_server(interceptor, scenario) == [
        grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT,
    ]


def test_health_and_reflection_answer_without_a_token(interceptor: AuthInterceptor) -> None:
    async def scenario(echo: Echo) -> tuple[int, int, list[str]]:
        stub = health_pb2_grpc.HealthStub(echo.channel)
        checked = await stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
        watch = stub.Watch(health_pb2.HealthCheckRequest(), timeout=10)
        watched = await watch.read()
        watch.cancel()
        reflection_call = reflection_pb2_grpc.ServerReflectionStub(echo.channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        services = [s.name async for reply in reflection_call for s in reply.list_services_response.service]
        return checked.status, watched.status, services

    checked, watched, services = _against_server(interceptor, scenario)
    assert checked == watched == health_pb2.HealthCheckResponse.SERVING
    assert "test.Echo" in services


def test_with_auth_off_every_call_acts_as_the_anonymous_admin_silently(
    settings: Settings, auth_logs: pytest.LogCaptureFixture
) -> None:
    off = AuthInterceptor.from_settings(Settings(auth_enabled=False))

    async def scenario(echo: Echo) -> list[str]:
        return [await echo.call("Whoami"), await echo.call("Unlisted", "not-even-a-token")]

    assert _against_server(off, scenario) == ["admin:anonymous", "admin:anonymous"]
    assert auth_logs.records == [], "nothing is logged per call"


def test_the_start_up_line_is_loud_when_auth_is_off(auth_logs: pytest.LogCaptureFixture) -> None:
    log_auth_mode(Settings(auth_enabled=False), "orders")
    log_auth_mode(Settings(), "inventory")
    off, on = auth_logs.records
    assert off.levelno == logging.WARNING and "FULFILLMENT_AUTH=off" in _logged(auth_logs)
    assert on.levelno == logging.INFO and on.getMessage() == "auth_on"


def test_an_unreadable_key_set_is_unavailable_not_the_callers_fault(tokens: Callable[..., str]) -> None:
    def unreachable() -> dict[str, Any]:
        raise OSError("connection refused")

    verifier = TokenVerifier(
        KeySet(unreachable, "https://idp.example/certs"),
        issuer="fulfillment-dev", audience="fulfillment", roles_claim="roles",
    )

    async def scenario(echo: Echo) -> grpc.aio.AioRpcError:
        return await echo.refusal("Whoami", tokens(A))

    error = _against_server(AuthInterceptor(verifier, TEST_POLICY), scenario)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "cannot be read right now" in (error.details() or "")


class CountingSource:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.token


def test_aio_client_interceptors_send_the_token_on_every_kind_of_call(
    interceptor: AuthInterceptor, tokens: Callable[..., str]
) -> None:
    source = CountingSource(tokens(C, subject="carol"))
    requests = [Message(service="x").SerializeToString()]

    async def scenario(echo: Echo) -> list[str]:
        interceptors = aio_auth_interceptors(source)
        async with grpc.aio.insecure_channel(echo.target, interceptors=interceptors) as channel:
            unary = await channel.unary_unary(ECHO + "Whoami")(b"", timeout=10)
            served = [m async for m in channel.unary_stream(ECHO + "WhoamiStream")(b"", timeout=10)]
            collected = await channel.stream_unary(ECHO + "Collect")(iter(requests), timeout=10)
            chat = [m async for m in channel.stream_stream(ECHO + "Chat")(iter(requests), timeout=10)]
            admin = await channel.unary_unary(ECHO + "Whoami")(
                b"", metadata=(("authorization", f"Bearer {tokens(A, subject='ops')}"),), timeout=10
            )
        return [Message.FromString(m).service for m in (unary, served[0], collected, chat[0], admin)]

    assert _against_server(interceptor, scenario) == [
        "customer:carol", "customer:carol", "customer:carol:x", "customer:carol:x", "admin:ops",
    ]
    assert source.calls == 4, "the caller's own authorization entry is left as it is"


def test_the_sync_client_interceptor_sends_the_token_on_every_kind_of_call(
    interceptor: AuthInterceptor, tokens: Callable[..., str]
) -> None:
    source = CountingSource(tokens(S, subject="monitor"))
    requests = [Message(service="y").SerializeToString()]

    def calls(target: str) -> list[str]:
        with grpc.insecure_channel(target) as plain:
            channel = grpc.intercept_channel(plain, AuthClientInterceptor(source))
            unary = channel.unary_unary(ECHO + "Whoami")(b"", timeout=10)
            served = list(channel.unary_stream(ECHO + "WhoamiStream")(b"", timeout=10))
            collected = channel.stream_unary(ECHO + "Collect")(iter(requests), timeout=10)
            chat = list(channel.stream_stream(ECHO + "Chat")(iter(requests), timeout=10))
        return [Message.FromString(m).service for m in (unary, *served, collected, *chat)]

    source.token = tokens(A, subject="ops")  # streams need admin or customer

    async def scenario(echo: Echo) -> list[str]:
        return await asyncio.to_thread(calls, echo.target)

    assert _against_server(interceptor, scenario) == [
        "admin:ops", "admin:ops", "admin:ops", "admin:ops:y", "admin:ops:y",
    ]
    assert source.calls == 4
