"""The lifecycle vocabulary is the public enum's, and its shape is the contract's."""

from __future__ import annotations

import pytest

from services.common.lifecycle.status import (
    CANCELABLE,
    NORMAL_PATH,
    TERMINAL,
    OrderStatus,
    has_reached,
    next_on_normal_path,
)
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2

pytestmark = pytest.mark.unit


def test_status_names_are_those_of_the_public_enum() -> None:
    public = [
        orders_pb2.Order.Status.Name(number)
        for number in orders_pb2.Order.Status.values()
        if number != orders_pb2.Order.STATUS_UNSPECIFIED
    ]
    assert [status.value for status in OrderStatus] == public


def test_the_normal_path_ends_delivered_and_only_its_first_three_steps_can_be_canceled() -> None:
    assert NORMAL_PATH[0] is OrderStatus.PENDING and NORMAL_PATH[-1] is OrderStatus.DELIVERED
    assert NORMAL_PATH[:3] == CANCELABLE
    assert {OrderStatus.DELIVERED, OrderStatus.CANCELED, OrderStatus.FAILED} == TERMINAL


def test_next_on_normal_path_follows_it_and_stops_at_its_end_or_off_it() -> None:
    assert [next_on_normal_path(s) for s in NORMAL_PATH] == [*NORMAL_PATH[1:], None]
    assert next_on_normal_path(OrderStatus.CANCELED) is None
    assert next_on_normal_path(OrderStatus.FAILED) is None


def test_an_order_ended_early_reached_no_later_status() -> None:
    assert has_reached(OrderStatus.SHIPPED, OrderStatus.PROCESSING)
    assert has_reached(OrderStatus.FAILED, OrderStatus.FAILED)
    assert not has_reached(OrderStatus.FAILED, OrderStatus.SHIPPED)
    assert not has_reached(OrderStatus.PROCESSING, OrderStatus.SHIPPED)
