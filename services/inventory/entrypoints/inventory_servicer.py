"""fulfillment.inventory.v1.InventoryService: validate, call the service layer, answer.

Domain errors propagate to services.common.grpc_errors, which maps them to status codes.
"""

from __future__ import annotations

import grpc

from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2 as inventory_pb2,
)
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2_grpc as inventory_pb2_grpc,
)
from services.inventory.entrypoints import requests, responses
from services.inventory.service_layer import catalog, stock
from services.inventory.service_layer.dependencies import InventoryServiceDeps


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, deps: InventoryServiceDeps) -> None:
        self._deps = deps

    async def CreateProduct(
        self, request: inventory_pb2.CreateProductRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Product:
        created = await catalog.create_product(requests.new_product(request), self._deps)
        return responses.product(created)

    async def GetProduct(
        self, request: inventory_pb2.GetProductRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Product:
        found = await catalog.get_product(requests.product_id(request), self._deps)
        return responses.product(found)

    async def ListProducts(
        self, request: inventory_pb2.ListProductsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListProductsResponse:
        page = await catalog.list_products(request.page_size, request.page_token, self._deps)
        return inventory_pb2.ListProductsResponse(
            products=[responses.product(p) for p in page.products],
            next_page_token=page.next_page_token,
        )

    async def BatchGetProducts(
        self, request: inventory_pb2.BatchGetProductsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.BatchGetProductsResponse:
        found = await catalog.batch_get_products(requests.product_ids(request), self._deps)
        return inventory_pb2.BatchGetProductsResponse(
            products=[responses.product(p) for p in found]
        )

    async def SetStock(
        self, request: inventory_pb2.SetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.StockLevel:
        product_id, stock_level = requests.new_stock_level(request)
        level = await stock.set_stock(product_id, stock_level, self._deps)
        return responses.stock_level(level)

    async def AdjustStock(
        self, request: inventory_pb2.AdjustStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.StockLevel:
        product_id, delta = requests.stock_delta(request)
        level = await stock.adjust_stock(product_id, delta, self._deps)
        return responses.stock_level(level)

    async def GetStock(
        self, request: inventory_pb2.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.StockLevel:
        level = await stock.get_stock(requests.product_id(request), self._deps)
        return responses.stock_level(level)
