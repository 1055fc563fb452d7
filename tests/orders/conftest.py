"""Real inventory and orders servers on loopback ports, real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial

import grpc
import pytest

import services.inventory.app as inventory_app
from services.common.config import Settings
from services.common.server import ServiceParts
from services.orders.app import OrdersApp, build_app
from tests.orders.clients import Clients
from tests.support import BackgroundServer


@dataclass
class OrdersServer:
    background: BackgroundServer
    app: OrdersApp

    @property
    def addr(self) -> str:
        return self.background.addr


def start_orders_server(settings: Settings) -> OrdersServer:
    built: list[OrdersApp] = []

    async def build() -> ServiceParts:
        app = await build_app(settings)
        built.append(app)
        return app.parts

    background = BackgroundServer(build).start()
    return OrdersServer(background, built[0])


@pytest.fixture(scope="package")
def inventory_server(settings: Settings) -> Iterator[BackgroundServer]:
    with BackgroundServer(partial(inventory_app.build, settings)) as server:
        yield server


@pytest.fixture(scope="package")
def orders_settings(settings: Settings, inventory_server: BackgroundServer) -> Settings:
    return replace(settings, inventory_addr=inventory_server.addr)


@pytest.fixture(scope="package")
def orders_server(orders_settings: Settings) -> Iterator[OrdersServer]:
    server = start_orders_server(orders_settings)
    try:
        yield server
    finally:
        server.background.stop()


@pytest.fixture(scope="package")
def clients(
    orders_server: OrdersServer, inventory_server: BackgroundServer
) -> Iterator[Clients]:
    with (
        grpc.insecure_channel(orders_server.addr) as orders_channel,
        grpc.insecure_channel(inventory_server.addr) as inventory_channel,
    ):
        yield Clients(orders_channel, inventory_channel)
