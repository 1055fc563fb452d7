from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as _orders_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdvanceOrderRequest(_message.Message):
    __slots__ = ("order_id", "expected_status", "to_status", "note", "next_step_due_in_seconds", "then_statuses")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    NEXT_STEP_DUE_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THEN_STATUSES_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    expected_status: _orders_service_pb2.Order.Status
    to_status: _orders_service_pb2.Order.Status
    note: str
    next_step_due_in_seconds: float
    then_statuses: _containers.RepeatedScalarFieldContainer[_orders_service_pb2.Order.Status]
    def __init__(self, order_id: _Optional[str] = ..., expected_status: _Optional[_Union[_orders_service_pb2.Order.Status, str]] = ..., to_status: _Optional[_Union[_orders_service_pb2.Order.Status, str]] = ..., note: _Optional[str] = ..., next_step_due_in_seconds: _Optional[float] = ..., then_statuses: _Optional[_Iterable[_Union[_orders_service_pb2.Order.Status, str]]] = ...) -> None: ...

class AdvanceOrderResponse(_message.Message):
    __slots__ = ("order", "applied", "then_applied")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    THEN_APPLIED_FIELD_NUMBER: _ClassVar[int]
    order: _orders_service_pb2.Order
    applied: bool
    then_applied: int
    def __init__(self, order: _Optional[_Union[_orders_service_pb2.Order, _Mapping]] = ..., applied: _Optional[bool] = ..., then_applied: _Optional[int] = ...) -> None: ...

class ClaimStaleOrdersRequest(_message.Message):
    __slots__ = ("limit", "stale_after_seconds", "lease_seconds")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STALE_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    limit: int
    stale_after_seconds: float
    lease_seconds: float
    def __init__(self, limit: _Optional[int] = ..., stale_after_seconds: _Optional[float] = ..., lease_seconds: _Optional[float] = ...) -> None: ...

class StaleOrder(_message.Message):
    __slots__ = ("order", "stale_claims")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    STALE_CLAIMS_FIELD_NUMBER: _ClassVar[int]
    order: _orders_service_pb2.Order
    stale_claims: int
    def __init__(self, order: _Optional[_Union[_orders_service_pb2.Order, _Mapping]] = ..., stale_claims: _Optional[int] = ...) -> None: ...

class ClaimStaleOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[StaleOrder]
    def __init__(self, orders: _Optional[_Iterable[_Union[StaleOrder, _Mapping]]] = ...) -> None: ...
