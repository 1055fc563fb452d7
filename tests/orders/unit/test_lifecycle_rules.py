"""The lifecycle transition table and how a missed compare-and-set is judged."""

from __future__ import annotations

import pytest

from services.common.lifecycle.status import CANCELABLE, NORMAL_PATH, TERMINAL, OrderStatus, has_reached
from services.orders.domain.errors import IllegalTransition, OrderNotCancelable
from services.orders.domain.lifecycle import is_transition, judge_missed_advance, require_cancelable

pytestmark = pytest.mark.unit

S = OrderStatus


@pytest.mark.parametrize(
    "from_status, to_status", list(zip(NORMAL_PATH, NORMAL_PATH[1:], strict=False))
)
def test_each_step_of_the_normal_path_is_a_transition(from_status, to_status):
    assert is_transition(from_status, to_status)


@pytest.mark.parametrize("from_status", list(S))
def test_only_orders_before_shipping_can_be_canceled(from_status):
    assert is_transition(from_status, S.CANCELED) == (from_status in CANCELABLE)


@pytest.mark.parametrize("from_status", list(S))
def test_any_order_still_moving_can_fail(from_status):
    assert is_transition(from_status, S.FAILED) == (from_status not in TERMINAL)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
@pytest.mark.parametrize("to_status", list(S))
def test_nothing_leaves_a_terminal_state(terminal, to_status):
    assert not is_transition(terminal, to_status)


@pytest.mark.parametrize(
    "from_status, to_status",
    [(S.PENDING, S.PACKAGING), (S.PROCESSING, S.SHIPPED), (S.PACKAGING, S.PROCESSING),
     (S.PENDING, S.PENDING), (S.SHIPPED, S.CANCELED)],
)
def test_skipping_repeating_or_going_back_is_not_a_transition(from_status, to_status):
    assert not is_transition(from_status, to_status)


@pytest.mark.parametrize(
    "current, target, reached",
    [
        (S.PROCESSING, S.PROCESSING, True),
        (S.DELIVERED, S.PROCESSING, True),
        (S.PACKAGING, S.SHIPPED, False),
        (S.CANCELED, S.CANCELED, True),
        (S.FAILED, S.FAILED, True),
        (S.CANCELED, S.PACKAGING, False),
        (S.FAILED, S.SHIPPED, False),
        (S.DELIVERED, S.FAILED, False),
    ],
)
def test_has_reached_only_along_the_normal_path(current, target, reached):
    assert has_reached(current, target) is reached


def test_a_repeated_step_is_judged_harmless():
    judge_missed_advance("o-1", S.PACKAGING, S.PROCESSING, S.PACKAGING)


def test_advancing_a_canceled_order_names_its_status():
    with pytest.raises(IllegalTransition, match="is CANCELED, not PROCESSING"):
        judge_missed_advance("o-1", S.CANCELED, S.PROCESSING, S.PACKAGING)


def test_cancel_refusal_names_the_status_and_the_cancelable_ones():
    with pytest.raises(OrderNotCancelable) as refused:
        require_cancelable("o-1", S.SHIPPED)
    assert refused.value.message == (
        "order is SHIPPED; only PENDING, PROCESSING or PACKAGING orders can be canceled"
    )
