"""The orders service's cache of product prices, over a fake inventory catalog."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from services.orders.adapters.price_cache import CachedCatalog
from services.orders.domain.errors import InventoryUnavailable
from tests.orders.unit.fakes import FakeCatalog

pytestmark = pytest.mark.unit


def catalog_with(**prices: str) -> FakeCatalog:
    return FakeCatalog(prices={int(k[1:]): Decimal(v) for k, v in prices.items()})


def test_a_known_price_is_asked_for_once():
    inner = catalog_with(p1="12.50", p2="3.00")
    cache = CachedCatalog(inner, max_entries=10)
    first = asyncio.run(cache.lookup_prices({1, 2}))
    second = asyncio.run(cache.lookup_prices({2, 1}))
    assert first.prices == second.prices == {1: Decimal("12.50"), 2: Decimal("3.00")}
    assert second.unknown == frozenset()
    assert inner.lookups == [{1, 2}]


def test_only_the_ids_not_yet_known_are_asked_for():
    inner = catalog_with(p1="12.50", p2="3.00", p3="7.25")
    cache = CachedCatalog(inner, max_entries=10)
    asyncio.run(cache.lookup_prices({1}))
    lookup = asyncio.run(cache.lookup_prices({1, 2, 3}))
    assert lookup.prices == {1: Decimal("12.50"), 2: Decimal("3.00"), 3: Decimal("7.25")}
    assert inner.lookups == [{1}, {2, 3}]


def test_an_unknown_product_is_asked_for_again_and_found_once_created():
    inner = catalog_with(p1="12.50")
    cache = CachedCatalog(inner, max_entries=10)
    assert asyncio.run(cache.lookup_prices({1, 9})).unknown == frozenset({9})
    inner.prices[9] = Decimal("1.00")  # the product is created afterwards
    lookup = asyncio.run(cache.lookup_prices({9}))
    assert lookup.prices == {9: Decimal("1.00")} and lookup.unknown == frozenset()
    assert inner.lookups == [{1, 9}, {9}]


def test_an_unavailable_inventory_is_reported_unless_every_price_is_known():
    inner = catalog_with(p1="12.50", p2="3.00")
    cache = CachedCatalog(inner, max_entries=10)
    asyncio.run(cache.lookup_prices({1}))
    inner.available = False
    assert asyncio.run(cache.lookup_prices({1})).prices == {1: Decimal("12.50")}
    with pytest.raises(InventoryUnavailable):
        asyncio.run(cache.lookup_prices({1, 2}))


def test_the_least_recently_used_price_is_dropped_at_the_bound():
    inner = catalog_with(p1="1", p2="2", p3="3")
    cache = CachedCatalog(inner, max_entries=2)
    asyncio.run(cache.lookup_prices({1}))
    asyncio.run(cache.lookup_prices({2}))
    asyncio.run(cache.lookup_prices({1}))  # 1 is now the most recently used
    asyncio.run(cache.lookup_prices({3}))  # drops 2
    assert len(cache) == 2
    inner.lookups.clear()
    asyncio.run(cache.lookup_prices({1, 3}))
    asyncio.run(cache.lookup_prices({2}))
    assert inner.lookups == [{2}]


def test_size_zero_turns_the_cache_off():
    inner = catalog_with(p1="1")
    cache = CachedCatalog(inner, max_entries=0)
    asyncio.run(cache.lookup_prices({1}))
    asyncio.run(cache.lookup_prices({1}))
    assert inner.lookups == [{1}, {1}] and len(cache) == 0
