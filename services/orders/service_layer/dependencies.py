"""Everything a service-layer handler may use, assembled once at startup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from services.common.pagination import PageTokenSource
from services.orders.service_layer.ports import (
    NoOrderMetrics,
    OrderChangeFeed,
    OrderMetrics,
    ProductCatalog,
    StepPublisher,
    StockReleaser,
    UnitOfWork,
)

# How many requests of a bulk stream are validated, priced and stored together.
BULK_BATCH_SIZE = 200


@dataclass(frozen=True)
class OrderServiceDeps:
    uow: UnitOfWork
    catalog: ProductCatalog
    releaser: StockReleaser
    publisher: StepPublisher
    changes: OrderChangeFeed
    # Asks the background release retrier to try again soon (see stock_release.py).
    retry_stock_releases: Callable[[], None]
    first_step_due_in_s: float
    bulk_max_items: int
    page_tokens: PageTokenSource
    bulk_batch_size: int = BULK_BATCH_SIZE
    metrics: OrderMetrics = field(default_factory=NoOrderMetrics)
