"""Everything a service-layer handler may use, assembled once at startup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.common.pagination import PageTokenSource
from services.inventory.domain.reservations import ReservationRequest
from services.inventory.service_layer.coalescing import Coalescer
from services.inventory.service_layer.ports import (
    NoReservationMetrics,
    ReservationMetrics,
    UnitOfWork,
)

if TYPE_CHECKING:
    from services.inventory.service_layer.reservations import ReserveOutcome


@dataclass(frozen=True)
class InventoryServiceDeps:
    uow: UnitOfWork
    page_tokens: PageTokenSource
    # One per process (reservations.reservation_batches(uow)): ReserveStock's group commit.
    reservation_batches: Coalescer[ReservationRequest, ReserveOutcome]
    metrics: ReservationMetrics = field(default_factory=NoReservationMetrics)
