"""Reservations under real concurrency: no oversell, no deadlock, no leaked or doubled stock."""

from __future__ import annotations

import threading

import grpc
import pytest
from google.rpc import error_details_pb2

from services.common.auth.principal import Role
from services.common.proto.fulfillment.inventory.v1 import reservation_service_pb2 as rpb
from services.common.proto.fulfillment.inventory.v1 import (
    reservation_service_pb2_grpc as rpb_grpc,
)
from tests.auth import authorized_channel
from tests.inventory.calls import details_of, new_order_id, race, reserve_request, stock_of

pytestmark = pytest.mark.integration


def test_64_concurrent_clients_never_oversell(
    inventory, inventory_server, settings, make_product
) -> None:
    product = make_product(stock=20)
    pid = product.product_id
    clients = [authorized_channel(inventory_server.addr, settings, Role.SERVICE) for _ in range(64)]
    stocks_seen: list[int] = []
    done = threading.Event()

    def watch_stock() -> None:
        while not done.is_set():
            stocks_seen.append(stock_of(inventory, pid))

    def reserve_one_unit(client: grpc.Channel):
        stub = rpb_grpc.ReservationServiceStub(client)
        return lambda _round: stub.ReserveStock(
            reserve_request(new_order_id(), {pid: 1}), timeout=60
        )

    watcher = threading.Thread(target=watch_stock)
    watcher.start()
    try:
        [outcomes] = race(1, [reserve_one_unit(client) for client in clients])
    finally:
        done.set()
        watcher.join(10)
        for client in clients:
            client.close()

    successes = [o for o in outcomes if isinstance(o, rpb.ReserveStockResponse)]
    failures = [o for o in outcomes if isinstance(o, grpc.RpcError)]
    assert len(successes) == 20
    assert all(s.newly_reserved for s in successes)
    assert len(failures) == 44
    for failure in failures:
        assert failure.code() is grpc.StatusCode.FAILED_PRECONDITION, failure.details()
        [detail] = details_of(failure, error_details_pb2.PreconditionFailure)
        assert [(v.subject, v.description) for v in detail.violations] == [
            (f"products/{pid}", "requested 1, available 0")
        ]
    assert stock_of(inventory, pid) == 0
    assert stocks_seen and min(stocks_seen) >= 0


def test_concurrent_repeats_of_one_order_reserve_once(
    inventory, reservations, make_product
) -> None:
    product = make_product(stock=10)
    order_id = new_order_id()
    request = reserve_request(order_id, {product.product_id: 4})

    [outcomes] = race(1, [lambda _: reservations.ReserveStock(request, timeout=30)] * 8)

    assert all(isinstance(o, rpb.ReserveStockResponse) for o in outcomes), outcomes
    assert sum(o.newly_reserved for o in outcomes) == 1
    assert {tuple((i.product_id, i.quantity) for i in o.items) for o in outcomes} == {
        ((product.product_id, 4),)
    }
    assert stock_of(inventory, product.product_id) == 6


def test_opposite_item_orders_never_deadlock_or_abort(
    inventory, reservations, make_product
) -> None:
    a, b = make_product(stock=2), make_product(stock=2)
    rounds = 100

    def reserve_then_release(items: dict[int, int]):
        def act(_round: int) -> tuple[bool, int]:
            order_id = new_order_id()
            reserved = reservations.ReserveStock(reserve_request(order_id, items), timeout=30)
            released = reservations.ReleaseStock(
                rpb.ReleaseStockRequest(order_id=order_id), timeout=30
            )
            return reserved.newly_reserved, len(released.released_items)

        return act

    outcomes = race(
        rounds,
        [
            reserve_then_release({a.product_id: 1, b.product_id: 1}),
            reserve_then_release({b.product_id: 1, a.product_id: 1}),
        ],
    )

    errors = [o for row in outcomes for o in row if isinstance(o, grpc.RpcError)]
    assert not errors, [(e.code(), e.details()) for e in errors[:3]]
    assert all(o == (True, 2) for row in outcomes for o in row)
    assert (stock_of(inventory, a.product_id), stock_of(inventory, b.product_id)) == (2, 2)


def test_release_racing_reserve_never_leaks_or_doubles_stock(
    inventory, reservations, make_product
) -> None:
    initial, quantity, rounds = 10, 3, 60
    product = make_product(stock=initial)
    pid = product.product_id
    order_ids = [new_order_id() for _ in range(rounds)]

    def reserve(round_number: int):
        return reservations.ReserveStock(
            reserve_request(order_ids[round_number], {pid: quantity}), timeout=30
        )

    def release(round_number: int):
        return reservations.ReleaseStock(
            rpb.ReleaseStockRequest(order_id=order_ids[round_number]), timeout=30
        )

    outcomes = race(rounds, [reserve, release, release])

    for order_id, (reserved, *releases) in zip(order_ids, outcomes, strict=True):
        assert all(isinstance(r, rpb.ReleaseStockResponse) for r in releases), releases
        given_back = sum(item.quantity for r in releases for item in r.released_items)
        if isinstance(reserved, rpb.ReserveStockResponse):
            # A release that ran first would have barred the reserve, so one of the
            # releases ran after it and gave back exactly what it took, once.
            assert given_back == quantity
        else:
            assert reserved.code() is grpc.StatusCode.FAILED_PRECONDITION, reserved.details()
            assert reserved.details() == f"reservation for order {order_id} was already released"
            assert given_back == 0
    assert stock_of(inventory, pid) == initial
