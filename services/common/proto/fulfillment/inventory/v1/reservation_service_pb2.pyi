from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReservationItem(_message.Message):
    __slots__ = ("product_id", "quantity")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product_id: int
    quantity: int
    def __init__(self, product_id: _Optional[int] = ..., quantity: _Optional[int] = ...) -> None: ...

class ReserveStockRequest(_message.Message):
    __slots__ = ("order_id", "items")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    items: _containers.RepeatedCompositeFieldContainer[ReservationItem]
    def __init__(self, order_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ReservationItem, _Mapping]]] = ...) -> None: ...

class ReserveStockResponse(_message.Message):
    __slots__ = ("order_id", "items", "newly_reserved")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEWLY_RESERVED_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    items: _containers.RepeatedCompositeFieldContainer[ReservationItem]
    newly_reserved: bool
    def __init__(self, order_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ReservationItem, _Mapping]]] = ..., newly_reserved: _Optional[bool] = ...) -> None: ...

class ReleaseStockRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class ReleaseStockResponse(_message.Message):
    __slots__ = ("order_id", "released_items")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    released_items: _containers.RepeatedCompositeFieldContainer[ReservationItem]
    def __init__(self, order_id: _Optional[str] = ..., released_items: _Optional[_Iterable[_Union[ReservationItem, _Mapping]]] = ...) -> None: ...
