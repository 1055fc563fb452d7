"""Hands new orders to the lifecycle worker: their first step tasks, published by name (the
orders service never imports the worker), a whole batch with one Redis command.

kombu's Redis transport stores each message as one JSON document pushed on the queue's
list; `send_task` pays a producer round trip and Celery's message building per message,
which profiling showed to be the largest cost of intake. So the message is built once, by
`send_task` itself on kombu's in-memory transport, and each order's message is that
template with the fields that differ between two step tasks replaced (the task id, its
arguments, when it was published, the delivery tag); a batch then goes out in one LPUSH.
tests/orders/integration/test_step_messages.py compares the result with what `send_task`
puts on Redis for the same task, and has a real worker consume it, so an upgrade of
Celery or kombu that changes the format fails there, not in production.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from services.common.config import Settings
from services.common.lifecycle.status import FIRST_STATUS, OrderStatus
from services.common.lifecycle.tasks import (
    LIFECYCLE_QUEUE,
    PUBLISHED_AT_HEADER,
    RUN_STEP_TASK,
    make_sender,
)
from services.common.logs import log_event
from services.common.tracing import inject_trace_context, span

logger = logging.getLogger("fulfillment.orders")


def send_task_template(settings: Settings) -> dict[str, Any]:
    """The message `send_task` builds for a step task, taken from kombu's memory transport
    (whose virtual channel prepares messages exactly as the Redis one does)."""
    sender = make_sender(settings)
    try:
        with sender.connection_for_write("memory://") as connection:
            sender.send_task(
                RUN_STEP_TASK, args=["", FIRST_STATUS.value], task_id="",
                headers={PUBLISHED_AT_HEADER: 0.0}, connection=connection,
            )
            template: dict[str, Any] = connection.default_channel._get(LIFECYCLE_QUEUE)
    finally:
        sender.close()
    return template


class BatchedFirstStepPublisher:
    def __init__(self, settings: Settings) -> None:
        self._template = send_task_template(settings)
        _, self._kwargs, self._embed = json.loads(base64.b64decode(self._template["body"]))
        # Fail fast: the order is committed either way and the stale monitor re-drives a
        # step that was never published. A broker restart leaves every pooled connection
        # dead; without retry_on_error each of them would fail one publish before it is
        # replaced. A retried LPUSH that had reached Redis duplicates a step message,
        # which the step's compare-and-set absorbs.
        self._redis = aioredis.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2,
            retry_on_error=[RedisConnectionError],
        )

    async def publish_first_steps(self, order_ids: Sequence[uuid.UUID]) -> None:
        # The orders of one batch were taken by one call: their steps continue its trace,
        # through a producer span as Celery's own publishing makes one (tracing on).
        with span(
            f"publish {RUN_STEP_TASK}", kind="producer", **{
                "messaging.system": "celery", "messaging.destination.name": LIFECYCLE_QUEUE,
                "messaging.batch.message_count": len(order_ids),
            }
        ):
            await self._push_first_steps(order_ids)

    async def _push_first_steps(self, order_ids: Sequence[uuid.UUID]) -> None:
        trace_context: dict[str, str] = {}
        inject_trace_context(trace_context)
        message = self._message_template(FIRST_STATUS, time.time(), trace_context)
        messages = [
            message.fill(str(order_id), str(uuid.uuid4()), str(uuid.uuid4())) for order_id in order_ids
        ]
        try:
            await self._redis.lpush(LIFECYCLE_QUEUE, *messages)
        except Exception as exc:
            # The orders are committed and their first step is due at next_step_due_time;
            # the stale monitor re-drives them once that has passed.
            log_event(
                logger, "step_publish_failed", logging.WARNING,
                orders=len(order_ids), first_order_id=str(order_ids[0]), error=repr(exc),
            )

    def task_message(
        self, order_id: str, status: OrderStatus, task_id: str, delivery_tag: str, published_at: float,
        trace_context: Mapping[str, str] | None = None,
    ) -> str:
        """The message `send_task` would push for this step, as the JSON that goes on the list;
        `trace_context` (traceparent, tracestate) goes into its headers, where the worker's
        Celery instrumentation reads the step's parent."""
        return self._message_template(status, published_at, trace_context or {}).fill(
            order_id, task_id, delivery_tag
        )

    def _message_template(
        self, status: OrderStatus, published_at: float, trace_context: Mapping[str, str]
    ) -> _MessageTemplate:
        """The JSON of a step message with what differs between the orders of one batch left
        as slots: built with one json.dumps per batch instead of two per order, which was the
        largest share of a bulk stream's CPU in the orders process (the profile in
        benchmarks/README.md)."""
        template = self._template
        args = [_ORDER_ID, status.value]
        # Plain strings, lists and dicts: json.dumps writes what kombu's JSON serializer does.
        body = json.dumps((args, self._kwargs, self._embed))
        document = json.dumps(
            {
                **template,
                "body": _BODY,
                "headers": {
                    **template["headers"], "id": _TASK_ID, "root_id": _TASK_ID,
                    "argsrepr": repr(args), PUBLISHED_AT_HEADER: published_at,
                    **trace_context,
                },
                "properties": {
                    **template["properties"], "correlation_id": _TASK_ID, "delivery_tag": _DELIVERY_TAG,
                },
            }
        )
        return _MessageTemplate(body, document)

    async def close(self) -> None:
        await self._redis.aclose()


# Slots in a message template: ASCII that json.dumps writes unchanged, and that neither
# Celery's message nor a UUID can contain.
_SLOTS = {
    "order_id": "@@order-id@@", "task_id": "@@task-id@@", "delivery_tag": "@@delivery-tag@@",
    "body": "@@body@@",
}
_ORDER_ID, _TASK_ID, _DELIVERY_TAG, _BODY = _SLOTS.values()


class _MessageTemplate:
    """A step message's JSON as a format string; `fill` puts in one order's values (UUID
    strings, which JSON and repr() write unescaped, and base64)."""

    def __init__(self, body: str, document: str) -> None:
        self._body = _format_string(body, ["order_id"])
        self._document = _format_string(document, list(_SLOTS))

    def fill(self, order_id: str, task_id: str, delivery_tag: str) -> str:
        body = base64.b64encode(self._body.format(order_id=order_id).encode()).decode("ascii")
        return self._document.format(
            order_id=order_id, task_id=task_id, delivery_tag=delivery_tag, body=body
        )


def _format_string(text: str, slots: list[str]) -> str:
    formatted = text.replace("{", "{{").replace("}", "}}")
    for name in slots:
        if _SLOTS[name] not in formatted:
            raise ValueError(f"a step message template lost its {name} slot")
        formatted = formatted.replace(_SLOTS[name], "{" + name + "}")
    return formatted
