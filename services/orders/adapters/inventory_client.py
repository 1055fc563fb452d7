"""The inventory service as the orders service sees it: prices of products, stock release."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from decimal import Decimal, InvalidOperation

import grpc

from services.common.error_infos import error_infos
from services.common.errors import Reason
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    reservation_service_pb2,
    reservation_service_pb2_grpc,
)
from services.orders.domain.errors import InventoryUnavailable
from services.orders.service_layer.ports import PriceLookup

# BatchGetProducts refuses more ids than this in one call.
MAX_IDS_PER_LOOKUP = 1000


class _ProductsMissing(Exception):
    def __init__(self, named_ids: set[int]) -> None:
        super().__init__(named_ids)
        self.named_ids = named_ids


class InventoryCatalog:
    def __init__(self, channel: grpc.aio.Channel, deadline_s: float) -> None:
        self._stub = inventory_service_pb2_grpc.InventoryServiceStub(channel)
        self._deadline_s = deadline_s

    async def lookup_prices(self, product_ids: Collection[int]) -> PriceLookup:
        """One BatchGetProducts call per 1000 ids when all exist.

        BatchGetProducts fails as a whole when any id is unknown, naming each one in a
        PRODUCT_NOT_FOUND reason. Only then, to tell each order exactly which of its
        products is unknown, the others are asked again (split in halves when no reason
        names any).
        """
        prices: dict[int, Decimal] = {}
        unknown: set[int] = set()
        ids = sorted(set(product_ids))
        for start in range(0, len(ids), MAX_IDS_PER_LOOKUP):
            chunk = ids[start : start + MAX_IDS_PER_LOOKUP]
            try:
                prices.update(await self._batch_get(chunk))
            except _ProductsMissing as missing:
                await self._narrow_down(chunk, missing.named_ids, prices, unknown)
        return PriceLookup(prices, frozenset(unknown))

    async def _narrow_down(
        self, ids: list[int], named_ids: set[int], prices: dict[int, Decimal], unknown: set[int]
    ) -> None:
        """`ids` holds at least one unknown product: sort every id into prices or unknown.

        The ids the inventory named unknown are; the others are asked again. When it named
        none (a reason it caps, or an older inventory), halves are asked in turn."""
        named = {i for i in ids if i in named_ids}
        if named:
            unknown.update(named)
            parts = [[i for i in ids if i not in named]]
        elif len(ids) == 1:
            unknown.add(ids[0])
            return
        else:
            parts = [ids[: len(ids) // 2], ids[len(ids) // 2 :]]
        for part in parts:
            if not part:
                continue
            try:
                prices.update(await self._batch_get(part))
            except _ProductsMissing as missing:
                await self._narrow_down(part, missing.named_ids, prices, unknown)

    async def _batch_get(self, product_ids: list[int]) -> dict[int, Decimal]:
        try:
            response = await self._stub.BatchGetProducts(
                inventory_service_pb2.BatchGetProductsRequest(product_ids=product_ids),
                timeout=self._deadline_s,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                raise _ProductsMissing(_unknown_product_ids(exc)) from None
            raise InventoryUnavailable(exc.code().name) from None
        try:
            return {p.product_id: Decimal(p.price) for p in response.products}
        except InvalidOperation:
            raise InventoryUnavailable("it answered a price that is not a number") from None


class ReservationReleaser:
    def __init__(self, channel: grpc.aio.Channel, deadline_s: float) -> None:
        self._stub = reservation_service_pb2_grpc.ReservationServiceStub(channel)
        self._deadline_s = deadline_s

    async def release_stock(self, order_id: uuid.UUID) -> None:
        try:
            await self._stub.ReleaseStock(
                reservation_service_pb2.ReleaseStockRequest(order_id=str(order_id)),
                timeout=self._deadline_s,
            )
        except grpc.aio.AioRpcError as exc:
            raise InventoryUnavailable(f"ReleaseStock: {exc.code().name}") from None


def _unknown_product_ids(exc: grpc.RpcError) -> set[int]:
    return {
        int(info["product_id"])
        for info in error_infos(exc, Reason.PRODUCT_NOT_FOUND)
        if info.get("product_id", "").isdigit()
    }
