"""End-to-end: tokens from a third-party identity provider (a Keycloak-style issuer whose
roles sit in the nested claim realm_access.roles, its key set a JWKS file) are accepted
by every service, and the worker and the orders service run on the FULFILLMENT_SERVICE_TOKEN
that provider issued them: an order placed by its customer is walked to DELIVERED, and a
token signed with the local key is refused."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.lifecycle.status import NORMAL_PATH
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as inv
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2_grpc as inv_grpc
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as ords
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2_grpc as ords_grpc
from tests.auth import bearer
from tests.lifecycle.stack import Services, purge_broker
from tests.support import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ISSUER = "https://idp.example.test/realms/shop"
AUDIENCE = "fulfillment-api"
KID = "idp-key-1"


class Provider:
    """The identity provider: an RSA key, its JWKS file, and the tokens it signs."""

    def __init__(self, directory: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = directory / "idp-jwks.json"
        self.jwks.write_text(json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}))

    def token(self, subject: str, *roles: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "nbf": now,
            "exp": now + 3600, "realm_access": {"roles": list(roles)}, "azp": "shop-frontend",
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})

    def metadata(self, subject: str, *roles: str) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.token(subject, *roles)}"),)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Provider:
    return Provider(tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="module")
def stack(
    provider: Provider, lifecycle_env: dict[str, str], lifecycle_logs: Path, redis_url: str
) -> Iterator[Services]:
    purge_broker(redis_url)
    env = {
        **lifecycle_env,
        "FULFILLMENT_AUTH_JWKS": str(provider.jwks),
        "FULFILLMENT_AUTH_ISSUER": ISSUER,
        "FULFILLMENT_AUTH_AUDIENCE": AUDIENCE,
        "FULFILLMENT_AUTH_ROLES_CLAIM": "realm_access.roles",
        "FULFILLMENT_SERVICE_TOKEN": provider.token("fulfillment-backend", "service"),
    }
    services = Services(env, lifecycle_logs, "idp-")
    try:
        services.start()
        services.start_worker(concurrency=2)
        yield services
    finally:
        services.stop()
        purge_broker(redis_url)


def test_a_third_party_issuers_tokens_run_an_order_to_delivered(
    provider: Provider, stack: Services
) -> None:
    admin = provider.metadata("ops-1", "admin", "offline_access")
    carol = provider.metadata("carol", "customer")
    with (
        grpc.insecure_channel(stack.env["INVENTORY_ADDR"]) as inventory_channel,
        grpc.insecure_channel(stack.env["ORDERS_ADDR"]) as orders_channel,
    ):
        inventory = inv_grpc.InventoryServiceStub(inventory_channel)
        orders = ords_grpc.OrderServiceStub(orders_channel)
        product = inventory.CreateProduct(
            inv.CreateProductRequest(
                sku=f"idp-{uuid.uuid4().hex[:10]}", name="IdP product", price="3.00", initial_stock=5
            ),
            metadata=admin, timeout=15,
        )
        order = orders.CreateOrder(
            ords.CreateOrderRequest(
                customer_name="Carol",
                items=[ords.CreateOrderItem(product_id=product.product_id, quantity=2)],
            ),
            metadata=carol, timeout=15,
        )
        assert order.customer_id == "carol"

        def delivered() -> ords.Order | None:
            current = orders.GetOrder(
                ords.GetOrderRequest(order_id=order.order_id), metadata=carol, timeout=15
            )
            return current if current.status == ords.Order.DELIVERED else None

        wait_until(delivered, timeout=60, interval=0.2, what="the order to be delivered")
        history = orders.ListOrderHistory(
            ords.ListOrderHistoryRequest(order_id=order.order_id), metadata=carol, timeout=15
        ).entries
        stock = inventory.GetStock(
            inv.GetStockRequest(product_id=product.product_id), metadata=carol, timeout=15
        )

    assert [ords.Order.Status.Name(e.to_status) for e in history] == list(NORMAL_PATH)
    assert history[0].actor == "customer:carol"
    assert {e.actor for e in history[1:]} == {"service:fulfillment-backend"}
    assert stock.stock_level == 3


def test_a_token_of_the_local_key_or_without_the_nested_roles_is_refused(
    provider: Provider, stack: Services
) -> None:
    local = Settings.from_env({"FULFILLMENT_AUTH_SIGNING_KEY": stack.env["FULFILLMENT_AUTH_SIGNING_KEY"]})
    request = inv.ListProductsRequest(page_size=1)
    with grpc.insecure_channel(stack.env["INVENTORY_ADDR"]) as channel:
        inventory = inv_grpc.InventoryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as foreign:
            inventory.ListProducts(request, metadata=bearer(local, Role.ADMIN), timeout=15)
        assert foreign.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as roleless:
            inventory.ListProducts(request, metadata=provider.metadata("dave"), timeout=15)
        assert roleless.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert inventory.ListProducts(request, metadata=provider.metadata("erin", "customer"), timeout=15)
