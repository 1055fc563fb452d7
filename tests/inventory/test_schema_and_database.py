"""The migration creates what the adapters query; a missing database is UNAVAILABLE."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import grpc
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from services.common.config import Settings
from services.common.database.urls import driver_url
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2 as pb
from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2_grpc as pb_grpc
from services.inventory.adapters.tables import SCHEMA, metadata
from services.inventory.app import build
from tests.auth import authorized_channel, secured_by
from tests.inventory.calls import rpc_error
from tests.support import BackgroundServer, free_port

pytestmark = pytest.mark.integration


def test_migrated_schema_matches_the_adapter_tables(database_url: str) -> None:
    engine = create_engine(driver_url(database_url, "psycopg2"))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_schemas": True,
                    "include_name": lambda name, kind, _parent: kind != "schema" or name == SCHEMA,
                    "include_object": lambda obj, name, kind, *_: name != "alembic_version",
                },
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


@pytest.fixture
def server_without_database(settings: Settings):
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    without = replace(settings, inventory_database_url=unreachable)
    with BackgroundServer(partial(build, without), secured_by(without)) as server:
        yield server


def test_unreachable_database_is_unavailable_not_internal(server_without_database, settings) -> None:
    with authorized_channel(server_without_database.addr, settings) as channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        error = rpc_error(lambda: stub.GetStock(pb.GetStockRequest(product_id=1), timeout=30))
    assert error.code() is grpc.StatusCode.UNAVAILABLE, error.details()
    assert "database is unavailable" in error.details()
