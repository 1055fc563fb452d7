"""Domain values as proto messages."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from google.protobuf import timestamp_pb2
from google.rpc import code_pb2, status_pb2

from services.common.error_status import to_status_proto
from services.common.errors import DomainError
from services.common.proto.fulfillment.orders.v1 import lifecycle_service_pb2 as lifecycle_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as orders_pb2
from services.orders.domain.model import HistoryEntry, Order, StaleOrder
from services.orders.service_layer.bulk_intake import BulkResult


def order_message(order: Order) -> orders_pb2.Order:
    message = orders_pb2.Order(
        order_id=str(order.order_id),
        customer_name=order.customer_name,
        status=order.status.value,
        items=[
            orders_pb2.OrderItem(
                product_id=line.product_id,
                quantity=line.quantity,
                unit_price=f"{line.unit_price:f}",
            )
            for line in order.items
        ],
        status_note=order.status_note,
        create_time=_timestamp(order.create_time),
        update_time=_timestamp(order.update_time),
        customer_id=order.customer_id,
    )
    if order.next_step_due_time is not None:
        message.next_step_due_time.CopyFrom(_timestamp(order.next_step_due_time))
    return message


def history_entry_message(entry: HistoryEntry) -> orders_pb2.HistoryEntry:
    return orders_pb2.HistoryEntry(
        # Unset (STATUS_UNSPECIFIED) for the first entry, which has no previous status.
        from_status=entry.from_status.value if entry.from_status else None,
        to_status=entry.to_status.value,
        time=_timestamp(entry.time),
        note=entry.note,
        actor=entry.actor,
    )


def bulk_result_message(result: BulkResult) -> orders_pb2.BulkCreateOrderResult:
    if isinstance(result.outcome, DomainError):
        return orders_pb2.BulkCreateOrderResult(
            index=result.index,
            request_id=result.request_id,
            status=to_status_proto(result.outcome),
        )
    return orders_pb2.BulkCreateOrderResult(
        index=result.index,
        request_id=result.request_id,
        status=_OK,
        order=order_message(result.outcome),
    )


def stale_order_message(stale: StaleOrder) -> lifecycle_pb2.StaleOrder:
    return lifecycle_pb2.StaleOrder(order=order_message(stale.order), stale_claims=stale.stale_claims)


_OK = status_pb2.Status(code=code_pb2.OK)


# The orders of one batch share their create, update and due times (the statement's now()),
# so a bulk stream converts each moment once. Callers only copy the message (into a field
# or with CopyFrom), never change it.
@lru_cache(maxsize=256)
def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp
