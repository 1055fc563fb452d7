"""`fulfillment gateway` (a real Envoy) verifying bearer tokens at the edge against a local
JWKS, in front of a stand-in for both services that records every call reaching it: a
bad or missing token is answered 401 with the contract's JSON error and never reaches
it; a valid one is passed on, header included. With FULFILLMENT_TLS_* the gateway talks
mutual TLS to the services."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from services.common.config import Settings
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as inventory_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2_grpc as orders_grpc
from services.common.tls import server_credentials
from services.devtools.local_ca import LocalCa, write_local_ca
from services.stack_parts import http_answers
from tests.e2e.gateway_replies import Reply, assert_error, send
from tests.support import Process, free_port, fulfillment_command, wait_until

pytestmark = pytest.mark.e2e

ISSUER = "https://idp.test/realms/shop"
AUDIENCE = "fulfillment-edge-test"
KID = "edge-test-key"
UNAUTHENTICATED = 16
GET_PRODUCT = "/fulfillment.inventory.v1.InventoryService/GetProduct"
GET_ORDER = "/fulfillment.orders.v1.OrderService/GetOrder"


@dataclass(frozen=True)
class Call:
    method: str
    authorization: str | None
    peer_common_name: str | None


@dataclass
class RecordingUpstream(grpc.GenericRpcHandler):
    """Both services as far as Envoy can tell: GetProduct and GetOrder answer, every other
    method is UNIMPLEMENTED; every call that reaches the server is recorded."""

    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if details.method == GET_PRODUCT:
            return grpc.unary_unary_rpc_method_handler(
                self._answer(details.method, lambda r: inventory_pb2.Product(product_id=r.product_id)),
                request_deserializer=inventory_pb2.GetProductRequest.FromString,
                response_serializer=inventory_pb2.Product.SerializeToString,
            )
        if details.method == GET_ORDER:
            return grpc.unary_unary_rpc_method_handler(
                self._answer(details.method, lambda r: orders_pb2.Order(order_id=r.order_id)),
                request_deserializer=orders_pb2.GetOrderRequest.FromString,
                response_serializer=orders_pb2.Order.SerializeToString,
            )
        self._record(details.method, dict(details.invocation_metadata).get("authorization"), None)
        return None

    def _answer(self, method: str, reply: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = dict(context.invocation_metadata())
            names = context.auth_context().get("x509_common_name") or [b""]
            self._record(method, metadata.get("authorization"), names[0].decode() or None)
            return reply(request)

        return handle

    def _record(self, method: str, authorization: Any, name: str | None) -> None:
        with self._lock:
            self.calls.append(Call(method, authorization, name))

    def count(self) -> int:
        with self._lock:
            return len(self.calls)


def start_upstream(
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[grpc.Server, RecordingUpstream, str]:
    upstream = RecordingUpstream()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[upstream])
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, upstream, f"127.0.0.1:{port}"


@dataclass(frozen=True)
class Gateway:
    url: str
    admin: str
    upstream: RecordingUpstream


@contextlib.contextmanager
def running_gateway(
    env: dict[str, str], log: Path, credentials: grpc.ServerCredentials | None = None
) -> Iterator[Gateway]:
    """A recording upstream behind `fulfillment gateway` run with `env`; both stopped after."""
    server, upstream, addr = start_upstream(credentials)
    port, admin = free_port(), free_port()
    process = Process(
        fulfillment_command("gateway"),
        {**env, "INVENTORY_ADDR": addr, "ORDERS_ADDR": addr,
         "GATEWAY_PORT": str(port), "GATEWAY_ADMIN_PORT": str(admin)},
        log,
    )
    try:
        answers = http_answers(f"http://127.0.0.1:{port}/")
        wait_until(lambda: answers() or process.popen.poll() is not None, timeout=30, what="the gateway")
        assert process.popen.poll() is None, process.output()[-3000:]
        yield Gateway(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", upstream)
    finally:
        process.stop(timeout=15)
        server.stop(grace=None)


@dataclass(frozen=True)
class Keys:
    key: ec.EllipticCurvePrivateKey
    jwks: Path

    def token(self, key: ec.EllipticCurvePrivateKey | None = None, **changes: Any) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "roles": ["admin"],
                  "iat": now, "exp": now + 300, **changes}
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, key or self.key, algorithm="ES256", headers={"kid": KID})


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": KID, "alg": "ES256", "use": "sig"}
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return Keys(key, path)


def base_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items()
        if not k.startswith(("FULFILLMENT_", "GATEWAY_", "INVENTORY_", "ORDERS_"))
    }


@pytest.fixture(scope="module")
def gateway(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {
        **base_env(),
        "FULFILLMENT_AUTH_JWKS": str(keys.jwks),
        "FULFILLMENT_AUTH_ISSUER": ISSUER,
        "FULFILLMENT_AUTH_AUDIENCE": AUDIENCE,
    }
    with running_gateway(env, tmp_path_factory.mktemp("edge") / "gateway.log") as running:
        yield running


def _segment(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def _unsigned(keys: Keys) -> str:
    claims = jwt.decode(keys.token(), options={"verify_signature": False})
    return f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': KID})}.{_segment(claims)}."


def _hs256_with_the_public_key(keys: Keys) -> str:
    """The classic confusion: HMAC keyed with the verifier's public key."""
    claims = jwt.decode(keys.token(), options={"verify_signature": False})
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': KID})}.{_segment(claims)}"
    secret = keys.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _forged_signature(keys: Keys) -> str:
    """Our kid and claims, signed with a key that is not in the key set."""
    return keys.token(key=ec.generate_private_key(ec.SECP256R1()))


REFUSED: dict[str, Callable[[Keys], dict[str, str]]] = {
    "no header": lambda k: {},
    "not a JWT": lambda k: {"authorization": "Bearer not-a-jwt"},
    "empty bearer": lambda k: {"authorization": "Bearer "},
    "another scheme": lambda k: {"authorization": f"Basic {k.token()}"},
    "wrong signature": lambda k: {"authorization": f"Bearer {_forged_signature(k)}"},
    "alg none": lambda k: {"authorization": f"Bearer {_unsigned(k)}"},
    "HS256 keyed with the public key": lambda k: {"authorization": f"Bearer {_hs256_with_the_public_key(k)}"},
    "expired": lambda k: {"authorization": f"Bearer {k.token(exp=int(time.time()) - 600)}"},
    "no expiry": lambda k: {"authorization": f"Bearer {k.token(exp=None)}"},
    "not yet valid": lambda k: {"authorization": f"Bearer {k.token(nbf=int(time.time()) + 600)}"},
    "wrong issuer": lambda k: {"authorization": f"Bearer {k.token(iss='https://evil.test')}"},
    "wrong audience": lambda k: {"authorization": f"Bearer {k.token(aud='another-api')}"},
}


def fetch(
    gateway: Gateway,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[Reply, dict[str, str]]:
    """One HTTP/1.1 request; the reply and its headers (lower-case names)."""
    host, _, port = gateway.url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        headers = {"content-type": "application/json", **(headers or {})}
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        reply = Reply(response.status, response.getheader("content-type", ""), response.read())
        return reply, {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()


def assert_refused_at_the_edge(
    gateway: Gateway, before: int, method: str, target: str, body: bytes | None = None,
    headers: dict[str, str] | None = None, token: str = "",
) -> None:
    """401 with the contract's JSON error and a bearer challenge, the token quoted nowhere,
    and no call reached a service."""
    reply, reply_headers = fetch(gateway, method, target, body, headers)
    error = assert_error(reply, 401, UNAUTHENTICATED)
    assert error["details"] == []
    assert reply_headers["www-authenticate"].startswith('Bearer realm="fulfillment"')
    if token:
        assert token not in reply.body.decode() and token not in json.dumps(reply_headers)
    assert gateway.upstream.count() == before, "a refused request reached a service"


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_or_missing_token_is_refused_before_any_service_is_called(
    gateway: Gateway, keys: Keys, case: str
) -> None:
    headers = REFUSED[case](keys)
    token = headers.get("authorization", "").partition(" ")[2]
    for method, target, body in [
        ("GET", "/v1/products/7", None),
        ("POST", "/v1/orders", b'{"items": [{"product_id": 7, "quantity": 1}]}'),
    ]:
        assert_refused_at_the_edge(gateway, gateway.upstream.count(), method, target, body, headers, token)


def test_a_valid_token_is_passed_on_with_its_header(gateway: Gateway, keys: Keys) -> None:
    token = keys.token()
    reply = send(gateway.url, "GET", "/v1/products/7", headers={"authorization": f"Bearer {token}"})
    assert reply.status == 200, str(reply)
    assert json.loads(reply.body)["product_id"] == "7"
    assert gateway.upstream.calls[-1] == Call(GET_PRODUCT, f"Bearer {token}", None)


def test_a_token_in_the_query_string_is_ignored(gateway: Gateway, keys: Keys) -> None:
    token = keys.token()
    for parameter in ("access_token", "token", "authorization"):
        target = f"/v1/products/7?{parameter}={token}"
        assert_refused_at_the_edge(gateway, gateway.upstream.count(), "GET", target, token=token)


def test_native_grpc_callers_meet_the_same_check(gateway: Gateway, keys: Keys) -> None:
    with grpc.insecure_channel(gateway.url.removeprefix("http://")) as channel:
        orders = orders_grpc.OrderServiceStub(channel)
        before = gateway.upstream.count()
        with pytest.raises(grpc.RpcError) as info:
            orders.GetOrder(orders_pb2.GetOrderRequest(order_id="o-1"), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert gateway.upstream.count() == before
        token = keys.token()
        order = orders.GetOrder(
            orders_pb2.GetOrderRequest(order_id="o-1"), timeout=10,
            metadata=[("authorization", f"Bearer {token}")],
        )
    assert order.order_id == "o-1"
    assert gateway.upstream.calls[-1] == Call(GET_ORDER, f"Bearer {token}", None)


def test_reflection_and_unknown_paths_need_no_token(gateway: Gateway) -> None:
    with grpc.insecure_channel(gateway.url.removeprefix("http://")) as channel:
        reflect = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        with pytest.raises(grpc.RpcError) as info:
            list(reflect(iter([b""]), timeout=10))
    # Reached the service (which, being a stand-in, has no reflection), not refused by Envoy.
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert gateway.upstream.calls[-1].method.startswith("/grpc.reflection.v1alpha.")
    assert_error(send(gateway.url, "GET", "/no/such/route"), 404, 5)
    # The gateway's own pages (services/gateway_static.py) are open too.
    document = send(gateway.url, "GET", "/openapi.json")
    assert (document.status, document.content_type) == (200, "application/json"), str(document)


def test_the_gateway_listens_on_loopback_by_default(gateway: Gateway) -> None:
    with urllib.request.urlopen(f"{gateway.admin}/listeners?format=json", timeout=10) as response:
        listeners = json.load(response)["listener_statuses"]
    (public,) = [listener for listener in listeners if listener["name"] == "public"]
    assert public["local_address"]["socket_address"]["address"] == Settings().gateway_host == "127.0.0.1"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    return write_local_ca(tmp_path_factory.mktemp("ca"))


def test_the_gateway_talks_mutual_tls_to_the_services(
    keys: Keys, ca: LocalCa, tmp_path: Path
) -> None:
    tls = {
        "FULFILLMENT_TLS_CERT": str(ca.server_cert),
        "FULFILLMENT_TLS_KEY": str(ca.server_key),
        "FULFILLMENT_TLS_CA": str(ca.ca),
    }
    env = {
        **base_env(), **tls,
        "FULFILLMENT_AUTH_JWKS": str(keys.jwks),
        "FULFILLMENT_AUTH_ISSUER": ISSUER,
        "FULFILLMENT_AUTH_AUDIENCE": AUDIENCE,
    }
    credentials = server_credentials(Settings.from_env(tls))
    with running_gateway(env, tmp_path / "gateway.log", credentials) as gateway:
        token = keys.token()
        reply = send(gateway.url, "GET", "/v1/products/9", headers={"authorization": f"Bearer {token}"})
        assert reply.status == 200, str(reply)
        # The service saw Envoy's client certificate: the one every role shares.
        assert gateway.upstream.calls[-1] == Call(GET_PRODUCT, f"Bearer {token}", "fulfillment services")
        assert_refused_at_the_edge(gateway, gateway.upstream.count(), "GET", "/v1/products/9")


@pytest.mark.parametrize("target", [
    "//v1/products/7",
    "/%761/products/7",
    "/v1%2Fproducts/7",
    "/./v1/products/7",
    "/v1/../v1/products/7",
    "/V1/products/7",
    "/fulfillment.inventory.v1.InventoryService/../fulfillment.inventory.v1.InventoryService/GetProduct",
])
def test_no_spelling_of_an_api_path_reaches_a_service_without_a_token(gateway: Gateway, target: str) -> None:
    """The edge check matches the path as sent; no variant of it reaches the transcoder's
    routes without also meeting the check."""
    before = gateway.upstream.count()
    reply, _ = fetch(gateway, "GET", target)
    assert reply.status in (401, 404), str(reply)
    assert gateway.upstream.count() == before
