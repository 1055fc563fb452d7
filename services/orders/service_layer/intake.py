"""Taking orders: validate, price through the inventory, store, hand to the lifecycle.

One code path serves CreateOrder (a batch of one) and every batch of BulkCreateOrders, so
both follow the same rules. Each request's outcome is exact and independent of the others:
as if the requests had been sent one by one as CreateOrder calls, in order.

request_id rules (AIP-155): the first request that is stored with an id owns it. Any later
request with that id (a retry, a duplicate in the same batch or stream, or a concurrent
call) gets the owning order back if its body has the same fingerprint (customer_name and
items, in any order), and RequestIdReused otherwise. A request that fails validation or
names an unknown product never claims its request_id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from services.common.errors import DomainError
from services.common.lifecycle.status import OrderStatus
from services.common.logs import log_event
from services.orders.domain.errors import InventoryUnavailable, RequestIdReused, UnknownProducts
from services.orders.domain.model import NewOrder, Order, StoredRequest
from services.orders.domain.order_requests import (
    OrderRequest,
    ValidOrderRequest,
    validate_order_request,
)
from services.orders.service_layer.completion import run_to_completion
from services.orders.service_layer.dependencies import OrderServiceDeps
from services.orders.service_layer.ports import OrderRepository

logger = logging.getLogger("fulfillment.orders")

Outcome = Order | DomainError


async def create_order(request: OrderRequest, deps: OrderServiceDeps) -> Order:
    (outcome,) = await create_orders([request], deps)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def create_orders(requests: Sequence[OrderRequest], deps: OrderServiceDeps) -> list[Outcome]:
    """One outcome per request, in request order: the order, or why there is none."""
    outcomes: dict[int, Outcome] = {}
    valid: dict[int, ValidOrderRequest] = {}
    for index, raw_request in enumerate(requests):
        try:
            valid[index] = validate_order_request(raw_request)
        except DomainError as exc:
            outcomes[index] = exc

    # Retries are priced like new requests: the insert finds them (ON CONFLICT on the
    # request_id) in the same statement that stores the new ones, which is cheaper than
    # looking every request_id up first.
    new_orders = await _price(valid, deps, outcomes)
    created: dict[uuid.UUID, Order] = {}
    if new_orders:
        created = await _store(new_orders, valid, deps, outcomes)
    await _answer_unpriced_retries(valid, created, deps, outcomes)
    return [outcomes[index] for index in range(len(requests))]


async def _price(
    requests: dict[int, ValidOrderRequest], deps: OrderServiceDeps, outcomes: dict[int, Outcome]
) -> dict[int, NewOrder]:
    """Price every request with one catalog lookup; record the ones that cannot be priced."""
    if not requests:
        return {}
    product_ids = {pid for request in requests.values() for pid in request.product_ids}
    try:
        lookup = await deps.catalog.lookup_prices(product_ids)
    except InventoryUnavailable as exc:
        outcomes.update(dict.fromkeys(requests, exc))
        return {}
    new_orders: dict[int, NewOrder] = {}
    for index, request in requests.items():
        unknown = [pid for pid in request.product_ids if pid in lookup.unknown]
        if unknown:
            outcomes[index] = UnknownProducts({pid: request.product_field(pid) for pid in unknown})
        else:
            new_orders[index] = request.priced(uuid.uuid4(), lookup.prices)
    return new_orders


async def _store(
    new_orders: dict[int, NewOrder],
    requests: dict[int, ValidOrderRequest],
    deps: OrderServiceDeps,
    outcomes: dict[int, Outcome],
) -> dict[uuid.UUID, Order]:
    # Within the batch the first request with a given request_id is the one stored; the
    # others are answered from whichever order ends up holding the id.
    claimants: dict[str, NewOrder] = {}
    to_insert: list[NewOrder] = []
    for new_order in new_orders.values():
        if new_order.request_id is None:
            to_insert.append(new_order)
        elif new_order.request_id not in claimants:
            claimants[new_order.request_id] = new_order
            to_insert.append(new_order)

    created, holders = await run_to_completion(_commit_and_publish(to_insert, deps))

    for index, new_order in new_orders.items():
        if new_order.order_id in created:
            outcomes[index] = created[new_order.order_id]
        else:
            assert new_order.request_id is not None
            outcomes[index] = _answer_retry(requests[index], holders[new_order.request_id])
    return created


async def _commit_and_publish(
    to_insert: list[NewOrder], deps: OrderServiceDeps
) -> tuple[dict[uuid.UUID, Order], dict[str, StoredRequest]]:
    async def insert(repo: OrderRepository) -> tuple[dict[uuid.UUID, Order], dict[str, StoredRequest]]:
        created = await repo.add_new_orders(to_insert, deps.first_step_due_in_s)
        holders = {
            n.request_id: StoredRequest(created[n.order_id], n.request_fingerprint or "")
            for n in to_insert
            if n.request_id and n.order_id in created
        }
        # Another order holds these request_ids (a retry, or a concurrent request): the
        # insert skipped ours (ON CONFLICT DO NOTHING waited for the winner to commit), so
        # this read, a new statement, sees the winner.
        taken = {n.request_id for n in to_insert if n.request_id and n.order_id not in created}
        if taken:
            holders.update(await repo.stored_requests(taken))
        return created, holders

    # The insert is one statement, and the winners it did not displace are committed.
    created, holders = await deps.uow.autocommit(insert, name="create_orders")
    new_ids = [n.order_id for n in to_insert if n.order_id in created]
    # One line per state change, each with its order_id (the operators' contract), even
    # though a batched line would save ~6% of a bulk stream's CPU.
    for order_id in new_ids:
        log_event(logger, "order_created", order_id=str(order_id), status=OrderStatus.PENDING)
    if new_ids:
        await deps.publisher.publish_first_steps(new_ids)
    return created, holders


async def _answer_unpriced_retries(
    requests: dict[int, ValidOrderRequest],
    created: dict[uuid.UUID, Order],
    deps: OrderServiceDeps,
    outcomes: dict[int, Outcome],
) -> None:
    """A retry of a stored request gets its order back even when it could not be priced
    (the inventory is down, say); only the rare failed request pays for this look-up."""
    unpriced = {
        index: request
        for index, request in requests.items()
        if request.request_id and isinstance(outcomes[index], InventoryUnavailable | UnknownProducts)
    }
    if not unpriced:
        return
    stored = await _stored_requests(deps, {r.request_id for r in unpriced.values() if r.request_id})
    created_at_index: dict[uuid.UUID, int] = {}
    for index in sorted(outcomes):
        outcome = outcomes[index]
        if isinstance(outcome, Order) and outcome.order_id in created:
            created_at_index.setdefault(outcome.order_id, index)
    for index, request in unpriced.items():
        holder = stored.get(request.request_id or "")
        # An order this batch stored after the failed request does not make it a retry.
        if holder is not None and created_at_index.get(holder.order.order_id, -1) < index:
            outcomes[index] = _answer_retry(request, holder)


async def _stored_requests(deps: OrderServiceDeps, request_ids: set[str]) -> dict[str, StoredRequest]:
    return await deps.uow.transaction(
        lambda repo: repo.stored_requests(request_ids), name="find_stored_requests"
    )


def _answer_retry(request: ValidOrderRequest, holder: StoredRequest) -> Outcome:
    assert request.request_id is not None
    if holder.fingerprint != request.fingerprint:
        return RequestIdReused(request.request_id)
    return holder.order
