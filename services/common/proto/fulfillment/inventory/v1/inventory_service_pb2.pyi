import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Product(_message.Message):
    __slots__ = ("product_id", "sku", "name", "description", "price", "stock_level", "create_time")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    product_id: int
    sku: str
    name: str
    description: str
    price: str
    stock_level: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, product_id: _Optional[int] = ..., sku: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., price: _Optional[str] = ..., stock_level: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateProductRequest(_message.Message):
    __slots__ = ("sku", "name", "description", "price", "initial_stock")
    SKU_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_STOCK_FIELD_NUMBER: _ClassVar[int]
    sku: str
    name: str
    description: str
    price: str
    initial_stock: int
    def __init__(self, sku: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., price: _Optional[str] = ..., initial_stock: _Optional[int] = ...) -> None: ...

class GetProductRequest(_message.Message):
    __slots__ = ("product_id",)
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: int
    def __init__(self, product_id: _Optional[int] = ...) -> None: ...

class ListProductsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProductsResponse(_message.Message):
    __slots__ = ("products", "next_page_token")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    next_page_token: str
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BatchGetProductsRequest(_message.Message):
    __slots__ = ("product_ids",)
    PRODUCT_IDS_FIELD_NUMBER: _ClassVar[int]
    product_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, product_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class BatchGetProductsResponse(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ...) -> None: ...

class SetStockRequest(_message.Message):
    __slots__ = ("product_id", "stock_level")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    product_id: int
    stock_level: int
    def __init__(self, product_id: _Optional[int] = ..., stock_level: _Optional[int] = ...) -> None: ...

class AdjustStockRequest(_message.Message):
    __slots__ = ("product_id", "delta")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    product_id: int
    delta: int
    def __init__(self, product_id: _Optional[int] = ..., delta: _Optional[int] = ...) -> None: ...

class GetStockRequest(_message.Message):
    __slots__ = ("product_id",)
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: int
    def __init__(self, product_id: _Optional[int] = ...) -> None: ...

class StockLevel(_message.Message):
    __slots__ = ("product_id", "stock_level")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    product_id: int
    stock_level: int
    def __init__(self, product_id: _Optional[int] = ..., stock_level: _Optional[int] = ...) -> None: ...
