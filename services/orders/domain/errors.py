"""What can go wrong with orders, named for the caller; mapped to gRPC codes elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.errors import (
    ErrorInfo,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
    Reason,
    ResourceExhausted,
    Unavailable,
)


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} does not exist")
        self.order_id = order_id


class UnknownProducts(NotFound):
    """Products an order names that the inventory does not know."""

    def __init__(self, product_fields: dict[int, str]) -> None:
        self.product_ids = sorted(product_fields)
        named = ", ".join(f"{pid} ({product_fields[pid]})" for pid in self.product_ids)
        noun = "product" if len(self.product_ids) == 1 else "products"
        verb = "does" if len(self.product_ids) == 1 else "do"
        super().__init__(f"{noun} {named} {verb} not exist; nothing was ordered")


class InventoryUnavailable(Unavailable):
    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "inventory service unavailable" + (f" ({detail})" if detail else "")
            + "; nothing was changed, retry later"
        )


class RequestIdReused(InvalidArgument):
    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"request_id {request_id!r} was already used for a different order "
            "(other customer_name or items); send a new request_id for a new order",
            [FieldViolation("request_id", "already used with a different request body")],
        )


class IllegalTransition(FailedPrecondition):
    @classmethod
    def not_in_lifecycle(cls, order_id: str, from_status: str, to_status: str) -> IllegalTransition:
        return cls(
            f"{from_status} -> {to_status} is not a step of the order lifecycle",
            [_status_violation(order_id, f"no transition {from_status} -> {to_status}")],
        )

    @classmethod
    def wrong_status(
        cls, order_id: str, current: str, expected: str, to_status: str
    ) -> IllegalTransition:
        return cls(
            f"order {order_id} is {current}, not {expected}; it cannot move to {to_status}",
            [_status_violation(order_id, f"status is {current}")],
            [ErrorInfo(Reason.ILLEGAL_TRANSITION, {"order_id": order_id, "current_status": str(current)})],
        )


class OrderNotCancelable(FailedPrecondition):
    def __init__(self, order_id: str, current: str, cancelable: Sequence[str]) -> None:
        allowed = ", ".join(cancelable[:-1]) + f" or {cancelable[-1]}"
        super().__init__(
            f"order is {current}; only {allowed} orders can be canceled",
            [_status_violation(order_id, f"status is {current}")],
            [ErrorInfo(Reason.ORDER_NOT_CANCELABLE, {"order_id": order_id, "current_status": str(current)})],
        )
        self.current = current


class BulkLimitExceeded(ResourceExhausted):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"a BulkCreateOrders stream takes at most {limit} orders; this one and every "
            "later one in the stream were not processed"
        )


class WatchInterrupted(Unavailable):
    def __init__(self) -> None:
        super().__init__("the server is shutting down; watch the order again")


class ChangeFeedUnavailable(Unavailable):
    def __init__(self) -> None:
        super().__init__("order change notifications are unavailable; retry later")


def invalid_order_id(field_path: str, raw: str) -> InvalidArgument:
    shown = raw if len(raw) <= 64 else raw[:64] + "..."
    return InvalidArgument(
        f"invalid request: {field_path}: must be a UUID, got {shown!r}",
        [FieldViolation(field_path, "must be a UUID such as 3f2c0c1e-8a4e-4f4b-9a57-1c2d3e4f5a6b")],
    )


def _status_violation(order_id: str, description: str) -> PreconditionViolation:
    return PreconditionViolation(type="ORDER_STATUS", subject=f"orders/{order_id}", description=description)
