"""fulfillment.inventory.v1.InventoryService: validate, call the service layer, answer.

Domain errors propagate to services.common.grpc_errors, which maps them to status codes.
"""

from __future__ import annotations

import grpc

from services.common.pagination import PageTokenSource
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2 as inventory_pb2,
)
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2_grpc as inventory_pb2_grpc,
)
from services.inventory.entrypoints import requests, responses
from services.inventory.service_layer import catalog, stock
from services.inventory.service_layer.unit_of_work import UnitOfWork


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, uow: UnitOfWork, page_tokens: PageTokenSource) -> None:
        self._uow = uow
        self._page_tokens = page_tokens

    async def CreateProduct(
        self, request: inventory_pb2.CreateProductRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Product:
        created = await catalog.create_product(self._uow, requests.new_product(request))
        return responses.product(created)

    async def GetProduct(
        self, request: inventory_pb2.GetProductRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Product:
        found = await catalog.get_product(self._uow, requests.product_id(request))
        return responses.product(found)

    async def ListProducts(
        self, request: inventory_pb2.ListProductsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListProductsResponse:
        page_tokens = await self._page_tokens.tokens()
        page_request = requests.products_page(request, page_tokens)
        page = await catalog.list_products(
            self._uow, page_request.after_id, page_request.page_size
        )
        return responses.products_page(page, page_tokens)

    async def BatchGetProducts(
        self, request: inventory_pb2.BatchGetProductsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.BatchGetProductsResponse:
        found = await catalog.batch_get_products(self._uow, requests.product_ids(request))
        return inventory_pb2.BatchGetProductsResponse(
            products=[responses.product(p) for p in found]
        )

    async def SetStock(
        self, request: inventory_pb2.SetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.StockLevel:
        product_id, stock_level = requests.new_stock_level(request)
        level = await stock.set_stock(self._uow, product_id, stock_level)
        return responses.stock_level(level)

    async def AdjustStock(
        self, request: inventory_pb2.AdjustStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.StockLevel:
        product_id, delta = requests.stock_delta(request)
        level = await stock.adjust_stock(self._uow, product_id, delta)
        return responses.stock_level(level)

    async def GetStock(
        self, request: inventory_pb2.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.StockLevel:
        level = await stock.get_stock(self._uow, requests.product_id(request))
        return responses.stock_level(level)
