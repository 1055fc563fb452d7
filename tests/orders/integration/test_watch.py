"""WatchOrder against real servers: every transition in order, many watchers, reconnects,
shutdown."""

from __future__ import annotations

import asyncio
import queue
import threading

import grpc
import pytest

from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2_grpc
from services.orders.adapters.change_feed import LISTENER_APPLICATION_NAME
from tests.auth import authorized_aio_channel, authorized_channel
from tests.orders.integration.clients import Status, orders_stub, sql, unique_name
from tests.orders.integration.conftest import start_orders_server
from tests.support import wait_until

pytestmark = pytest.mark.integration

NORMAL_PATH = [Status.PENDING, Status.PROCESSING, Status.PACKAGING, Status.SHIPPED,
               Status.DELIVERED]


class Watch:
    """One WatchOrder stream read by a thread into a queue; `None` marks its end."""

    def __init__(self, stub: orders_service_pb2_grpc.OrderServiceStub, order_id: str) -> None:
        self.call = stub.WatchOrder(orders_pb2.WatchOrderRequest(order_id=order_id), timeout=60)
        self.received: queue.Queue[orders_pb2.Order | None] = queue.Queue()
        self.error: grpc.RpcError | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for order in self.call:
                self.received.put(order)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self.received.put(None)

    def next(self, timeout: float = 10) -> orders_pb2.Order | None:
        return self.received.get(timeout=timeout)

    def rest(self, timeout: float = 10) -> list[orders_pb2.Order]:
        orders = []
        while (order := self.next(timeout)) is not None:
            orders.append(order)
        self._thread.join(timeout)
        return orders


def test_watch_sees_every_transition_in_order_then_ends(clients):
    order = clients.create_order(unique_name("watched"), [(clients.create_product(), 1)])
    watch = Watch(clients.orders, order.order_id)
    first = watch.next()
    assert first == order
    for expected, to_status in zip(NORMAL_PATH, NORMAL_PATH[1:], strict=False):
        clients.advance(order.order_id, expected, to_status, note=f"to {to_status}")
    updates = watch.rest()
    assert watch.error is None
    assert [o.status for o in updates] == NORMAL_PATH[1:]
    assert [o.status_note for o in updates] == [f"to {s}" for s in NORMAL_PATH[1:]]
    assert updates[-1] == clients.get(order.order_id)


def test_watching_a_finished_order_shows_it_once_and_ends(clients):
    order = clients.create_order(unique_name(), [(clients.create_product(), 1)])
    clients.orders.CancelOrder(orders_pb2.CancelOrderRequest(order_id=order.order_id), timeout=30)
    watch = Watch(clients.orders, order.order_id)
    assert [o.status for o in watch.rest()] == [Status.CANCELED]


def test_200_watchers_neither_starve_unary_calls_nor_outlive_their_clients(
    clients, orders_server, settings
):
    product = clients.create_product()
    orders = [clients.create_order(unique_name("crowd"), [(product, 1)]) for _ in range(20)]
    feed = orders_server.app.change_feed

    def watchers_on_server() -> int:
        async def count() -> int:
            return feed.watcher_count

        return orders_server.background.call(count())

    async def scenario() -> list[list[int]]:
        async with authorized_aio_channel(orders_server.addr, settings) as channel:
            stub = orders_service_pb2_grpc.OrderServiceStub(channel)
            calls = [
                stub.WatchOrder(orders_pb2.WatchOrderRequest(order_id=o.order_id), timeout=60)
                for o in orders
                for _ in range(10)
            ]
            firsts = await asyncio.wait_for(asyncio.gather(*(c.read() for c in calls)), 30)
            assert all(f.status == Status.PENDING for f in firsts)
            assert await asyncio.to_thread(watchers_on_server) == 200

            gets = await asyncio.wait_for(
                asyncio.gather(*(
                    stub.GetOrder(orders_pb2.GetOrderRequest(order_id=o.order_id), timeout=10)
                    for o in orders * 3
                )),
                30,
            )
            assert [g.order_id for g in gets] == [o.order_id for o in orders * 3]

            # Half the clients walk away; their watchers go with them.
            for call in calls[::2]:
                call.cancel()
            await asyncio.to_thread(
                wait_until, lambda: watchers_on_server() == 100, 10, 0.05, "watchers freed"
            )
            for order in orders:
                await stub.CancelOrder(
                    orders_pb2.CancelOrderRequest(order_id=order.order_id), timeout=10
                )

            async def remaining(call) -> list[int]:
                statuses = []
                while (order := await call.read()) is not grpc.aio.EOF:
                    statuses.append(order.status)
                return statuses

            return await asyncio.wait_for(asyncio.gather(*map(remaining, calls[1::2])), 30)

    rests = asyncio.run(scenario())
    assert all(rest == [Status.CANCELED] for rest in rests)
    wait_until(lambda: watchers_on_server() == 0, timeout=10, what="every watcher gone")


def test_watch_survives_the_listener_connection_dropping(clients, database_url):
    order = clients.create_order(unique_name("reconnect"), [(clients.create_product(), 1)])
    watch = Watch(clients.orders, order.order_id)
    assert watch.next().status == Status.PENDING
    killed = sql(
        database_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND datname = current_database()",
        (LISTENER_APPLICATION_NAME,),
    )
    assert killed
    clients.advance(order.order_id, Status.PENDING, Status.PROCESSING)
    assert watch.next(timeout=20).status == Status.PROCESSING
    clients.advance(order.order_id, Status.PROCESSING, Status.FAILED)
    assert [o.status for o in watch.rest(timeout=20)] == [Status.FAILED]


def test_stopping_the_server_ends_watches_with_unavailable(clients, orders_settings):
    order = clients.create_order(unique_name(), [(clients.create_product(), 1)])
    server = start_orders_server(orders_settings)
    stopped = False
    try:
        with authorized_channel(server.addr, orders_settings) as channel:
            watch = Watch(orders_stub(channel), order.order_id)
            assert watch.next().status == Status.PENDING
            server.background.stop(grace=5)
            stopped = True
            assert watch.rest() == []
    finally:
        if not stopped:
            server.background.stop()
    assert watch.error is not None
    assert watch.error.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in watch.error.details()
