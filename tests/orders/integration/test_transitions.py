"""Transitions against real servers: idempotent advances, cancel races, stale claims,
and stock that always adds up."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import grpc
import pytest

from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as lifecycle_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from tests.auth import authorized_channel
from tests.orders.integration.clients import Status, orders_stub, rpc_code, sql, unique_name
from tests.orders.integration.servers import start_orders_server
from tests.support import free_port, wait_until

pytestmark = pytest.mark.integration

NORMAL_PATH = [Status.PENDING, Status.PROCESSING, Status.PACKAGING, Status.SHIPPED,
               Status.DELIVERED]


def assert_history_is_a_chain(clients, order_id: str) -> list[int]:
    entries = clients.history(order_id)
    statuses = [e.to_status for e in entries]
    assert entries[0].from_status == Status.STATUS_UNSPECIFIED
    assert statuses[0] == Status.PENDING
    for previous, entry in zip(entries, entries[1:], strict=False):
        assert entry.from_status == previous.to_status
    assert len(statuses) == len(set(statuses))
    return statuses


def test_a_repeated_advance_is_not_applied_and_leaves_history_alone(clients):
    order = clients.create_order(unique_name(), [(clients.create_product(), 1)])
    first = clients.advance(order.order_id, Status.PENDING, Status.PROCESSING)
    repeat = clients.advance(order.order_id, Status.PENDING, Status.PROCESSING)
    assert first.applied and not repeat.applied
    assert repeat.order == first.order
    assert len(clients.history(order.order_id)) == 2


def test_an_order_walks_the_whole_lifecycle_and_ends_without_a_due_time(clients):
    order = clients.create_order(unique_name(), [(clients.create_product(), 1)])
    for expected, to_status in zip(NORMAL_PATH, NORMAL_PATH[1:], strict=False):
        response = clients.advance(order.order_id, expected, to_status)
        assert response.applied
    assert not response.order.HasField("next_step_due_time")
    assert assert_history_is_a_chain(clients, order.order_id) == NORMAL_PATH


def test_cancel_racing_an_advance_has_one_winner_and_conserves_stock(clients):
    initial_stock = 10_000
    product = clients.create_product(stock=initial_stock)
    customer = unique_name("race")
    orders = [clients.create_order(customer, [(product, 1 + i % 3)]) for i in range(24)]
    for order in orders:
        clients.advance(order.order_id, Status.PENDING, Status.PROCESSING)
    # Half race the ship step (PACKAGING -> SHIPPED), half the packing step with its
    # reservation, as the worker does it (reserve, then PROCESSING -> PACKAGING).
    shipping, packing = orders[:12], orders[12:]
    for order in shipping:
        clients.reserve(order)
        clients.advance(order.order_id, Status.PROCESSING, Status.PACKAGING)

    def cancel(order) -> grpc.StatusCode:
        return rpc_code(lambda: clients.orders.CancelOrder(
            orders_pb2.CancelOrderRequest(order_id=order.order_id, reason="race"), timeout=30
        ))

    def ship(order) -> grpc.StatusCode:
        return rpc_code(lambda: clients.advance(order.order_id, Status.PACKAGING, Status.SHIPPED))

    def pack(order) -> grpc.StatusCode:
        reserved = rpc_code(lambda: clients.reserve(order))
        if reserved != grpc.StatusCode.OK:
            return reserved
        return rpc_code(
            lambda: clients.advance(order.order_id, Status.PROCESSING, Status.PACKAGING)
        )

    def race(order, step) -> tuple[grpc.StatusCode, grpc.StatusCode]:
        start = threading.Barrier(2)

        def together(action):
            start.wait(10)
            return action(order)

        with ThreadPoolExecutor(2) as pair:
            stepped, canceled = pair.submit(together, step), pair.submit(together, cancel)
            return stepped.result(30), canceled.result(30)

    with ThreadPoolExecutor(8) as pool:
        ship_races = list(pool.map(lambda o: race(o, ship), shipping))
        pack_races = list(pool.map(lambda o: race(o, pack), packing))

    ok, refused = grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION
    shipped_quantity = 0
    for order, (shipped, canceled) in zip(shipping, ship_races, strict=True):
        assert {shipped, canceled} == {ok, refused}, (shipped, canceled)
        final = clients.get(order.order_id).status
        assert final == (Status.SHIPPED if shipped == ok else Status.CANCELED)
        shipped_quantity += order.items[0].quantity if final == Status.SHIPPED else 0
        assert_history_is_a_chain(clients, order.order_id)
    for order, (_packed, canceled) in zip(packing, pack_races, strict=True):
        assert canceled == ok
        assert clients.get(order.order_id).status == Status.CANCELED
        assert_history_is_a_chain(clients, order.order_id)

    wait_until(
        lambda: clients.stock(product) == initial_stock - shipped_quantity, timeout=10,
        what="stock to equal initial minus what shipped orders hold",
    )


def test_a_release_that_failed_at_cancel_time_is_retried_later(
    clients, orders_settings, database_url
):
    product = clients.create_product(stock=100)
    order = clients.create_order(unique_name("release"), [(product, 40)])
    clients.advance(order.order_id, Status.PENDING, Status.PROCESSING)
    clients.reserve(order)
    clients.advance(order.order_id, Status.PROCESSING, Status.PACKAGING)
    assert clients.stock(product) == 60

    cut_off = start_orders_server(
        replace(orders_settings, inventory_addr=f"127.0.0.1:{free_port()}", grpc_deadline_s=0.5)
    )
    try:
        with authorized_channel(cut_off.addr, orders_settings) as channel:
            canceled = orders_stub(channel).CancelOrder(
                orders_pb2.CancelOrderRequest(order_id=order.order_id), timeout=30
            )
    finally:
        cut_off.background.stop()
    assert canceled.status == Status.CANCELED
    assert clients.stock(product) == 60
    pending = "SELECT stock_release_pending FROM orders.orders WHERE order_id = %s"
    assert sql(database_url, pending, (order.order_id,)) == [(True,)]

    # A process that can reach the inventory finishes the job when it starts.
    healthy = start_orders_server(orders_settings)
    try:
        wait_until(lambda: clients.stock(product) == 100, timeout=15, what="stock to come back")
        wait_until(lambda: sql(database_url, pending, (order.order_id,)) == [(False,)], timeout=5)
    finally:
        healthy.background.stop()


@pytest.mark.parametrize("held_in", [Status.PACKAGING, Status.SHIPPED])
def test_failing_an_order_gives_its_stock_back_without_the_caller_releasing(
    clients, database_url, held_in
):
    product = clients.create_product(stock=50)
    order = clients.create_order(unique_name("fail-release"), [(product, 20)])
    clients.advance(order.order_id, Status.PENDING, Status.PROCESSING)
    clients.reserve(order)
    clients.advance(order.order_id, Status.PROCESSING, Status.PACKAGING)
    if held_in == Status.SHIPPED:
        clients.advance(order.order_id, Status.PACKAGING, Status.SHIPPED)
    assert clients.stock(product) == 30

    # As the stale monitor does, but nobody calls ReleaseStock afterwards.
    failed = clients.advance(order.order_id, held_in, Status.FAILED, note="stale: overdue")
    assert failed.applied and failed.order.status == Status.FAILED
    wait_until(lambda: clients.stock(product) == 50, timeout=15, what="stock to come back")
    pending = "SELECT stock_release_pending FROM orders.orders WHERE order_id = %s"
    wait_until(lambda: sql(database_url, pending, (order.order_id,)) == [(False,)], timeout=10)


def test_concurrent_stale_claims_never_return_the_same_order_twice(clients, database_url):
    product = clients.create_product()
    customer = unique_name("stale")
    order_ids = {clients.create_order(customer, [(product, 1)]).order_id for _ in range(30)}
    # Overdue by two hours: further than any other test's orders could be.
    sql(
        database_url,
        "UPDATE orders.orders SET next_step_due_time = now() - interval '2 hours' "
        "WHERE customer_name = %s",
        (customer,),
    )
    claim = lifecycle_pb2.ClaimStaleOrdersRequest(
        limit=3, stale_after_seconds=3600, lease_seconds=3600
    )

    def claim_until_none_left() -> list[tuple[str, int]]:
        claimed = []
        # Only these 30 orders are overdue by an hour, and each batch claims at least one:
        # far fewer batches than this end in an empty one.
        for _ in range(10 * len(order_ids)):
            batch = clients.lifecycle.ClaimStaleOrders(claim, timeout=30).orders
            if not batch:
                return claimed
            claimed.extend((s.order.order_id, s.stale_claims) for s in batch)
        raise AssertionError(f"claims never ran out: {len(claimed)} claimed by one caller")

    with ThreadPoolExecutor(12) as pool:
        claims = [c for result in pool.map(lambda _: claim_until_none_left(), range(12))
                  for c in result]
    claimed_ids = [order_id for order_id, _ in claims]
    assert len(claimed_ids) == len(set(claimed_ids)), "an order was claimed twice"
    assert order_ids <= set(claimed_ids)
    assert all(count == 1 for order_id, count in claims if order_id in order_ids)
    for order_id in order_ids:
        due = clients.get(order_id).next_step_due_time.ToDatetime()
        assert due > clients.get(order_id).create_time.ToDatetime()


def test_a_run_of_steps_applies_each_as_its_own_transition(clients):
    order = clients.create_order(unique_name(), [(clients.create_product(), 1)])
    clients.advance(order.order_id, Status.PENDING, Status.PROCESSING)
    response = clients.advance(
        order.order_id, Status.PROCESSING, Status.PACKAGING,
        then=[Status.SHIPPED, Status.DELIVERED],
    )
    assert (response.applied, response.then_applied) == (True, 2)
    assert response.order.status == Status.DELIVERED
    assert assert_history_is_a_chain(clients, order.order_id) == NORMAL_PATH
    # A repeat of the run (a redelivered task) applies nothing and moves nothing.
    again = clients.advance(
        order.order_id, Status.PROCESSING, Status.PACKAGING,
        then=[Status.SHIPPED, Status.DELIVERED],
    )
    assert (again.applied, again.then_applied) == (False, 0)
    assert len(clients.history(order.order_id)) == len(NORMAL_PATH)


def test_a_run_of_steps_off_the_lifecycle_path_is_invalid(clients):
    order = clients.create_order(unique_name(), [(clients.create_product(), 1)])
    with pytest.raises(grpc.RpcError) as refused:
        clients.advance(order.order_id, Status.PENDING, Status.PROCESSING, then=[Status.SHIPPED])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "then_statuses[0]" in refused.value.details()
    assert clients.get(order.order_id).status == Status.PENDING


def test_cancel_racing_a_run_of_steps_has_one_winner_and_a_history_without_gaps(clients):
    product = clients.create_product()
    orders = [clients.create_order(unique_name("run-race"), [(product, 1)]) for _ in range(24)]
    for order in orders:
        clients.advance(order.order_id, Status.PENDING, Status.PROCESSING)
        clients.advance(order.order_id, Status.PROCESSING, Status.PACKAGING)

    def race(order):
        start = threading.Barrier(2)

        def run_steps():
            start.wait(10)
            try:
                return clients.advance(
                    order.order_id, Status.PACKAGING, Status.SHIPPED, then=[Status.DELIVERED]
                )
            except grpc.RpcError as exc:
                return exc.code()

        def cancel():
            start.wait(10)
            return rpc_code(lambda: clients.orders.CancelOrder(
                orders_pb2.CancelOrderRequest(order_id=order.order_id, reason="race"), timeout=30
            ))

        with ThreadPoolExecutor(2) as pair:
            stepped, canceled = pair.submit(run_steps), pair.submit(cancel)
            return stepped.result(30), canceled.result(30)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(race, orders))
    for order, (stepped, cancel_code) in zip(orders, outcomes, strict=True):
        final = clients.get(order.order_id).status
        statuses = assert_history_is_a_chain(clients, order.order_id)
        if cancel_code == grpc.StatusCode.OK:
            # The cancel came first: the run found the order canceled and applied nothing.
            assert final == Status.CANCELED and stepped == grpc.StatusCode.FAILED_PRECONDITION
            assert statuses == [*NORMAL_PATH[:3], Status.CANCELED]
        else:
            # The run shipped first: no cancel after SHIPPED, so it delivered.
            assert cancel_code == grpc.StatusCode.FAILED_PRECONDITION
            assert final == Status.DELIVERED and (stepped.applied, stepped.then_applied) == (True, 1)
            assert statuses == NORMAL_PATH
