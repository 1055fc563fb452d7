"""SummarizeOrders on a real server and database: counts that match the database while
orders are being created, advanced and canceled, served by the status index, admins only."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from services.common.auth.principal import Role
from services.common.config import Settings
from services.common.lifecycle.status import OrderStatus
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.auth import authorized_channel
from tests.orders.integration.clients import (
    TIMEOUT,
    Clients,
    Status,
    orders_stub,
    rpc_code,
    sql,
    unique_name,
)

pytestmark = pytest.mark.integration

CREATORS, ORDERS_EACH = 4, 12
STATUS_NAMES = [status.value for status in OrderStatus]


def summary(clients: Clients) -> dict[str, int]:
    response = clients.orders.SummarizeOrders(orders_pb2.SummarizeOrdersRequest(), timeout=TIMEOUT)
    return dict(response.counts)


def database_counts(database_url: str) -> dict[str, int]:
    rows = sql(database_url, "SELECT status, count(*) FROM orders.orders GROUP BY status")
    return {**dict.fromkeys(STATUS_NAMES, 0), **dict(rows)}


def test_counts_match_the_database_while_orders_are_created_advanced_and_canceled(
    clients: Clients, database_url: str
) -> None:
    product = clients.create_product()
    customer = unique_name("summary")
    before = summary(clients)
    created: list[str] = []
    created_lock = threading.Lock()
    creating = threading.Event()
    creating.set()

    def create_orders() -> None:
        for _ in range(ORDERS_EACH):
            order = clients.create_order(customer, [(product, 1)])
            with created_lock:
                created.append(order.order_id)

    def watch_totals() -> list[int]:
        totals = []
        while creating.is_set() and len(totals) < 500:
            counts = summary(clients)
            assert sorted(counts) == sorted(STATUS_NAMES), counts
            totals.append(sum(counts.values()))
        return totals

    with ThreadPoolExecutor(CREATORS + 1) as pool:
        watcher = pool.submit(watch_totals)
        creators = [pool.submit(create_orders) for _ in range(CREATORS)]
        for creator in creators:
            creator.result(timeout=60)
        creating.clear()
        totals = watcher.result(timeout=60)

    assert totals == sorted(totals), "orders are never deleted, so a total never shrinks"
    advanced, canceled = created[:10], created[10:15]

    def advance(order_id: str) -> None:
        clients.advance(order_id, Status.PENDING, Status.PROCESSING)

    def cancel(order_id: str) -> None:
        clients.orders.CancelOrder(
            orders_pb2.CancelOrderRequest(order_id=order_id, reason="test"), timeout=TIMEOUT
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(advance, advanced, timeout=60))
        list(pool.map(cancel, canceled, timeout=60))

    after = summary(clients)
    assert after == database_counts(database_url)
    change = {name: after[name] - before.get(name, 0) for name in STATUS_NAMES}
    assert change == {
        **dict.fromkeys(STATUS_NAMES, 0),
        "PENDING": CREATORS * ORDERS_EACH - len(advanced) - len(canceled),
        "PROCESSING": len(advanced),
        "CANCELED": len(canceled),
    }


def test_the_count_is_one_group_by_the_status_index_serves(database_url: str) -> None:
    """With sequential scans priced out (as on a table large enough to matter), the planner
    reads the status index alone: no index of its own is needed."""
    plan = sql(
        database_url,
        "SET LOCAL enable_seqscan = off; "
        "EXPLAIN SELECT status, count(*) FROM orders.orders GROUP BY status",
    )
    text = "\n".join(line for (line,) in plan)
    assert "Index Only Scan using ix_orders_status_create_time" in text, text


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.SERVICE])
def test_only_admins_may_summarize(orders_server, settings: Settings, role: Role) -> None:
    with authorized_channel(orders_server.addr, settings, role) as channel:
        code = rpc_code(
            lambda: orders_stub(channel).SummarizeOrders(
                orders_pb2.SummarizeOrdersRequest(), timeout=TIMEOUT
            )
        )
    assert code is grpc.StatusCode.PERMISSION_DENIED


def test_an_admin_gets_every_status(orders_server, settings: Settings) -> None:
    with authorized_channel(orders_server.addr, settings, Role.ADMIN) as channel:
        counts = orders_stub(channel).SummarizeOrders(
            orders_pb2.SummarizeOrdersRequest(), timeout=TIMEOUT
        ).counts
    assert sorted(counts) == sorted(STATUS_NAMES)
    assert all(count >= 0 for count in counts.values())
