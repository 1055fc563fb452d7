"""Taking orders: validate, price through the inventory, store, hand to the lifecycle.

One code path serves CreateOrder (a batch of one) and every batch of BulkCreateOrders, so
both follow the same rules. Each request's outcome is exact and independent of the others:
as if the requests had been sent one by one as CreateOrder calls, in order.

Each order belongs to a customer: the caller's own subject, or the customer an admin names
(services/orders/domain/callers.py); a customer naming another gets PermissionDenied.

request_id rules (AIP-155), per customer: the first request of a customer that is stored
with an id owns it. Any later request of that customer with that id (a retry, a duplicate
in the same batch or stream, or a concurrent call) gets the owning order back if its body
has the same fingerprint (customer_name and items, in any order), and RequestIdReused
otherwise. Another customer's request with the same id is a new order: keys are scoped per
customer, so nobody can receive someone else's order by guessing a key. A request that
fails validation or names an unknown product never claims its request_id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from services.common.errors import DomainError
from services.common.lifecycle.status import OrderStatus
from services.common.logs import log_event
from services.orders.domain.callers import Caller
from services.orders.domain.errors import InventoryUnavailable, RequestIdReused, UnknownProducts
from services.orders.domain.model import NewOrder, Order, RequestKey, StoredRequest
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


@dataclass(frozen=True)
class Intake:
    """One outcome per request, in request order: the order, or why there is none."""

    outcomes: list[Outcome]
    # How many of the outcomes are orders this call created; the other orders are
    # earlier ones returned for a repeated request_id.
    created: int


async def create_order(request: OrderRequest, caller: Caller, deps: OrderServiceDeps) -> Order:
    (outcome,) = await create_orders([request], caller, deps)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def create_orders(
    requests: Sequence[OrderRequest], caller: Caller, deps: OrderServiceDeps
) -> list[Outcome]:
    """One outcome per request, in request order: the order, or why there is none."""
    return (await take_orders(requests, caller, deps)).outcomes


async def take_orders(
    requests: Sequence[OrderRequest], caller: Caller, deps: OrderServiceDeps
) -> Intake:
    outcomes: dict[int, Outcome] = {}
    valid: dict[int, ValidOrderRequest] = {}
    owners: dict[int, str] = {}
    for index, raw_request in enumerate(requests):
        try:
            valid[index] = validate_order_request(raw_request)
            owners[index] = caller.owner_for(valid[index].requested_customer_id)
        except DomainError as exc:
            valid.pop(index, None)
            outcomes[index] = exc

    # Retries are priced like new requests: the insert finds them (ON CONFLICT on the
    # request_id) in the same statement that stores the new ones, which is cheaper than
    # looking every request_id up first.
    new_orders = await _price(valid, owners, deps, outcomes)
    created: dict[uuid.UUID, Order] = {}
    if new_orders:
        created = await _store(new_orders, valid, caller, deps, outcomes)
    await _answer_unpriced_retries(valid, owners, created, deps, outcomes)
    return Intake([outcomes[index] for index in range(len(requests))], len(created))


async def _price(
    requests: dict[int, ValidOrderRequest],
    owners: dict[int, str],
    deps: OrderServiceDeps,
    outcomes: dict[int, Outcome],
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
            new_orders[index] = request.priced(uuid.uuid4(), owners[index], lookup.prices)
    return new_orders


async def _store(
    new_orders: dict[int, NewOrder],
    requests: dict[int, ValidOrderRequest],
    caller: Caller,
    deps: OrderServiceDeps,
    outcomes: dict[int, Outcome],
) -> dict[uuid.UUID, Order]:
    # Within the batch the first request with a given key is the one stored; the others
    # are answered from whichever order ends up holding the key.
    claimants: dict[RequestKey, NewOrder] = {}
    to_insert: list[NewOrder] = []
    for new_order in new_orders.values():
        key = new_order.request_key
        if key is None:
            to_insert.append(new_order)
        elif key not in claimants:
            claimants[key] = new_order
            to_insert.append(new_order)

    created, holders = await run_to_completion(_commit_and_publish(to_insert, caller, deps))

    for index, new_order in new_orders.items():
        if new_order.order_id in created:
            outcomes[index] = created[new_order.order_id]
        else:
            key = new_order.request_key
            assert key is not None
            holder = holders.get(key)
            if holder is None:
                # Not held elsewhere, so this batch stored the key's first request.
                claimant = claimants[key]
                holder = StoredRequest(created[claimant.order_id], claimant.request_fingerprint or "")
            outcomes[index] = _answer_retry(requests[index], holder)
    return created


async def _commit_and_publish(
    to_insert: list[NewOrder], caller: Caller, deps: OrderServiceDeps
) -> tuple[dict[uuid.UUID, Order], dict[RequestKey, StoredRequest]]:
    async def insert(
        repo: OrderRepository,
    ) -> tuple[dict[uuid.UUID, Order], dict[RequestKey, StoredRequest]]:
        created = await repo.add_new_orders(to_insert, deps.first_step_due_in_s, caller.actor)
        # Another order holds these keys (a retry, or a concurrent request): the insert
        # skipped ours (ON CONFLICT DO NOTHING waited for the winner to commit), so this
        # read, a new statement, sees the winner. The keys this batch stored are answered
        # from `created` by the caller.
        taken = {
            key for n in to_insert if n.order_id not in created and (key := n.request_key) is not None
        }
        holders = await repo.stored_requests(taken) if taken else {}
        return created, holders

    # The insert is one statement, and the winners it did not displace are committed.
    created, holders = await deps.uow.autocommit(insert, name="create_orders")
    new_ids = [n.order_id for n in to_insert if n.order_id in created]
    deps.metrics.orders_created(len(new_ids))
    # One line per state change, each with its order_id (the operators' contract), even
    # though a batched line would save ~6% of a bulk stream's CPU.
    for order_id in new_ids:
        log_event(
            logger, "order_created", order_id=str(order_id), status=OrderStatus.PENDING,
            actor=caller.actor,
        )
    if new_ids:
        await deps.publisher.publish_first_steps(new_ids)
    return created, holders


async def _answer_unpriced_retries(
    requests: dict[int, ValidOrderRequest],
    owners: dict[int, str],
    created: dict[uuid.UUID, Order],
    deps: OrderServiceDeps,
    outcomes: dict[int, Outcome],
) -> None:
    """A retry of a stored request gets its order back even when it could not be priced
    (the inventory is down, say); only the rare failed request pays for this look-up."""
    unpriced = {
        index: RequestKey(owners[index], request.request_id)
        for index, request in requests.items()
        if request.request_id and isinstance(outcomes[index], InventoryUnavailable | UnknownProducts)
    }
    if not unpriced:
        return
    stored = await _stored_requests(deps, set(unpriced.values()))
    created_at_index: dict[uuid.UUID, int] = {}
    for index in sorted(outcomes):
        outcome = outcomes[index]
        if isinstance(outcome, Order) and outcome.order_id in created:
            created_at_index.setdefault(outcome.order_id, index)
    for index, key in unpriced.items():
        holder = stored.get(key)
        # An order this batch stored after the failed request does not make it a retry.
        if holder is not None and created_at_index.get(holder.order.order_id, -1) < index:
            outcomes[index] = _answer_retry(requests[index], holder)


async def _stored_requests(
    deps: OrderServiceDeps, keys: set[RequestKey]
) -> dict[RequestKey, StoredRequest]:
    return await deps.uow.transaction(
        lambda repo: repo.stored_requests(keys), name="find_stored_requests"
    )


def _answer_retry(request: ValidOrderRequest, holder: StoredRequest) -> Outcome:
    assert request.request_id is not None
    if holder.fingerprint != request.fingerprint:
        return RequestIdReused(request.request_id)
    return holder.order
