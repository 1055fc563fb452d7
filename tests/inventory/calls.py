"""Small helpers for calling the inventory service and reading its rich errors."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from grpc_status import rpc_status

from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2, reservation_service_pb2

M = TypeVar("M", bound=Message)


def new_order_id() -> str:
    return str(uuid.uuid4())


def stock_of(inventory: Any, product_id: int) -> int:
    """The product's stock level, read through the InventoryService stub `inventory`."""
    return inventory.GetStock(
        inventory_service_pb2.GetStockRequest(product_id=product_id), timeout=10
    ).stock_level


def reserve_request(order_id: str, items: dict[int, int]) -> reservation_service_pb2.ReserveStockRequest:
    """items: product_id -> quantity, sent in the dict's order."""
    return reservation_service_pb2.ReserveStockRequest(
        order_id=order_id,
        items=[
            reservation_service_pb2.ReservationItem(product_id=pid, quantity=qty)
            for pid, qty in items.items()
        ],
    )


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    """The error `call` ends with; fails the test when it succeeds."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def details_of(error: grpc.RpcError, kind: type[M]) -> list[M]:
    """Every google.rpc.Status detail of type `kind` carried by `error`."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return []
    found = []
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            found.append(message)
    return found


def outcome_of(call: Callable[[], Any]) -> Any:
    """The call's response, or the grpc.RpcError it ended with."""
    try:
        return call()
    except grpc.RpcError as error:
        return error


def race(rounds: int, actors: list[Callable[[int], Any]], timeout: float = 60) -> list[list[Any]]:
    """Run every actor once per round on its own thread, all released together each round.

    Returns outcomes[round][actor] (a response or a grpc.RpcError).
    """
    outcomes: list[list[Any]] = [[None] * len(actors) for _ in range(rounds)]
    barrier = threading.Barrier(len(actors), timeout=timeout)
    crashes: list[BaseException] = []

    def run(index: int, actor: Callable[[int], Any]) -> None:
        try:
            for round_number in range(rounds):
                barrier.wait()
                outcomes[round_number][index] = outcome_of(partial(actor, round_number))
        except BaseException as exc:
            crashes.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(actors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "an actor hung"
    if crashes:
        raise crashes[0]
    return outcomes
