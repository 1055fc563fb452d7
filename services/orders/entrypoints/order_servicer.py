"""OrderService over gRPC: translate each request, call the service layer, translate back.

Who may call which RPC is the access policy's, enforced by the server's authentication
interceptor before a handler runs; what the caller may see and do with orders (its own,
as a customer) is the service layer's, given the caller. Errors are raised as domain
exceptions and mapped to gRPC statuses by the server's ErrorMappingInterceptor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2_grpc
from services.orders.domain.order_requests import OrderRequest, validate_cancel_reason
from services.orders.entrypoints import requests, responses
from services.orders.entrypoints.callers import current_caller
from services.orders.service_layer import (
    bulk_intake,
    cancellation,
    intake,
    queries,
    watching,
)
from services.orders.service_layer.dependencies import OrderServiceDeps

Context: TypeAlias = grpc.aio.ServicerContext


class OrderServicer(orders_service_pb2_grpc.OrderServiceServicer):
    def __init__(self, deps: OrderServiceDeps) -> None:
        self._deps = deps

    async def CreateOrder(
        self, request: orders_pb2.CreateOrderRequest, context: Context
    ) -> orders_pb2.Order:
        order = await intake.create_order(
            requests.order_request(request), current_caller(), self._deps
        )
        return responses.order_message(order)

    async def BulkCreateOrders(
        self, request_iterator: AsyncIterator[orders_pb2.CreateOrderRequest], context: Context
    ) -> AsyncIterator[orders_pb2.BulkCreateOrderResult]:
        async def order_requests() -> AsyncIterator[OrderRequest]:
            async for request in request_iterator:
                yield requests.order_request(request)

        caller = current_caller()
        async for result in bulk_intake.bulk_create_orders(order_requests(), caller, self._deps):
            yield responses.bulk_result_message(result)

    async def GetOrder(
        self, request: orders_pb2.GetOrderRequest, context: Context
    ) -> orders_pb2.Order:
        order = await queries.get_order(requests.order_id(request), current_caller(), self._deps)
        return responses.order_message(order)

    async def ListOrders(
        self, request: orders_pb2.ListOrdersRequest, context: Context
    ) -> orders_pb2.ListOrdersResponse:
        page = await queries.list_orders(
            requests.order_filters(request), request.page_size, request.page_token,
            current_caller(), self._deps,
        )
        return orders_pb2.ListOrdersResponse(
            orders=[responses.order_message(order) for order in page.orders],
            next_page_token=page.next_page_token,
        )

    async def ListOrderHistory(
        self, request: orders_pb2.ListOrderHistoryRequest, context: Context
    ) -> orders_pb2.ListOrderHistoryResponse:
        entries = await queries.order_history(
            requests.order_id(request), current_caller(), self._deps
        )
        return orders_pb2.ListOrderHistoryResponse(
            entries=[responses.history_entry_message(entry) for entry in entries]
        )

    async def CancelOrder(
        self, request: orders_pb2.CancelOrderRequest, context: Context
    ) -> orders_pb2.Order:
        order_id = requests.order_id(request)
        reason = validate_cancel_reason(request.reason)
        order = await cancellation.cancel_order(order_id, reason, current_caller(), self._deps)
        return responses.order_message(order)

    async def WatchOrder(
        self, request: orders_pb2.WatchOrderRequest, context: Context
    ) -> AsyncIterator[orders_pb2.Order]:
        order_id = requests.order_id(request)
        async for order in watching.watch_order(order_id, current_caller(), self._deps):
            yield responses.order_message(order)

    async def SummarizeOrders(
        self, request: orders_pb2.SummarizeOrdersRequest, context: Context
    ) -> orders_pb2.SummarizeOrdersResponse:
        counts = await queries.summarize_orders(current_caller(), self._deps)
        return orders_pb2.SummarizeOrdersResponse(
            counts={status.value: count for status, count in counts.items()}
        )
