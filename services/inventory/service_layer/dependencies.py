"""Everything a service-layer handler may use, assembled once at startup."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.pagination import PageTokenSource
from services.inventory.service_layer.ports import (
    NoReservationMetrics,
    ReservationMetrics,
    UnitOfWork,
)


@dataclass(frozen=True)
class InventoryServiceDeps:
    uow: UnitOfWork
    page_tokens: PageTokenSource
    metrics: ReservationMetrics = field(default_factory=NoReservationMetrics)
