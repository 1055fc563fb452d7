"""Prices the inventory has already told us, kept in the orders process.

A product's price never changes and a product is never deleted: the contract has no RPC
that does either (CreateProduct sets the price; SetStock and AdjustStock change only the
stock). So a price once read is the product's price forever, and a create whose products
are all known needs no call to the inventory at all. Unknown ids are never remembered
(the product may be created a moment later), so an order naming one always asks again.
If the contract ever gains a way to change a price, this cache must go (or be invalidated
by it): an order must carry the product's price when ordered.

Bounded: at most `max_entries` prices, the least recently used dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from decimal import Decimal

from services.orders.service_layer.ports import PriceLookup, ProductCatalog


class CachedCatalog:
    def __init__(self, catalog: ProductCatalog, max_entries: int) -> None:
        self._catalog = catalog
        self._max_entries = max_entries
        self._prices: OrderedDict[int, Decimal] = OrderedDict()

    def __len__(self) -> int:
        return len(self._prices)

    async def lookup_prices(self, product_ids: Collection[int]) -> PriceLookup:
        prices: dict[int, Decimal] = {}
        missing: list[int] = []
        for product_id in product_ids:
            price = self._prices.get(product_id)
            if price is None:
                missing.append(product_id)
            else:
                prices[product_id] = price
                self._prices.move_to_end(product_id)
        if not missing:
            return PriceLookup(prices)
        # Raises InventoryUnavailable like the catalog: nothing is half-answered.
        lookup = await self._catalog.lookup_prices(missing)
        prices.update(lookup.prices)
        self._remember(lookup.prices)
        return PriceLookup(prices, lookup.unknown)

    def _remember(self, prices: dict[int, Decimal]) -> None:
        if self._max_entries <= 0:
            return
        self._prices.update(prices)
        for product_id in prices:
            self._prices.move_to_end(product_id)
        while len(self._prices) > self._max_entries:
            self._prices.popitem(last=False)
