"""The first-step messages the orders service pushes in batches are the ones Celery's
send_task puts on Redis for the same task: an upgrade of Celery or kombu that changes the
message format fails here (and tests/lifecycle/test_e2e_step_messages.py has a real
worker consume one)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from services.common.config import Settings
from services.common.lifecycle.status import OrderStatus
from services.common.lifecycle.tasks import (
    LIFECYCLE_QUEUE,
    PUBLISHED_AT_HEADER,
    RUN_STEP_TASK,
    make_sender,
)
from services.devtools.stores import claim_redis_db
from services.orders.adapters.step_publisher import BatchedFirstStepPublisher
from tests.conftest import REDIS_BASE

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_url() -> Iterator[str]:
    url, release = claim_redis_db(REDIS_BASE)
    try:
        yield url
    finally:
        release()


def pushed_by_send_task(broker_url: str, order_id: str, task_id: str, published_at: float) -> dict:
    sender = make_sender(Settings.from_env({"REDIS_URL": broker_url}))
    client = redis.Redis.from_url(broker_url)
    try:
        sender.send_task(
            RUN_STEP_TASK, args=[order_id, OrderStatus.PENDING.value], task_id=task_id,
            headers={PUBLISHED_AT_HEADER: published_at},
        )
        (raw,) = client.lrange(LIFECYCLE_QUEUE, 0, -1)
        client.delete(LIFECYCLE_QUEUE)
    finally:
        sender.close()
        client.close()
    return json.loads(raw)


def test_each_message_equals_what_send_task_pushes_for_the_same_task(broker_url: str) -> None:
    publisher = BatchedFirstStepPublisher(Settings.from_env({"REDIS_URL": broker_url}))
    for published_at in (1_700_000_000.25, 1_700_000_001.5):
        order_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
        theirs = pushed_by_send_task(broker_url, order_id, task_id, published_at)
        tag = theirs["properties"]["delivery_tag"]

        ours = json.loads(
            publisher.task_message(order_id, OrderStatus.PENDING, task_id, tag, published_at)
        )

        # The only field that names the sending Celery app (its oid, for replies we never
        # ask for) is the one that differs between two senders.
        theirs["properties"].pop("reply_to")
        ours["properties"].pop("reply_to")
        assert ours == theirs


def test_a_batch_pushes_one_message_per_order_each_equal_to_send_tasks(broker_url: str) -> None:
    # One message template serves the whole batch: each order must still get its own
    # arguments, task id and delivery tag.
    publisher = BatchedFirstStepPublisher(Settings.from_env({"REDIS_URL": broker_url}))
    order_ids = [uuid.uuid4() for _ in range(3)]
    client = redis.Redis.from_url(broker_url)
    try:
        asyncio.run(_publish_and_close(publisher, order_ids))
        pushed = [json.loads(raw) for raw in client.lrange(LIFECYCLE_QUEUE, 0, -1)]
        client.delete(LIFECYCLE_QUEUE)
    finally:
        client.close()

    ours_by_order = {message["headers"]["argsrepr"]: message for message in pushed}
    assert len(ours_by_order) == len(order_ids) == len(pushed)
    assert len({message["headers"]["id"] for message in pushed}) == len(order_ids)
    assert len({message["properties"]["delivery_tag"] for message in pushed}) == len(order_ids)
    for order_id in order_ids:
        ours = ours_by_order[repr([str(order_id), OrderStatus.PENDING.value])]
        headers, properties = ours["headers"], ours["properties"]
        theirs = pushed_by_send_task(
            broker_url, str(order_id), headers["id"], headers[PUBLISHED_AT_HEADER]
        )
        theirs["properties"]["delivery_tag"] = properties["delivery_tag"]
        theirs["properties"].pop("reply_to")
        properties.pop("reply_to")
        assert ours == theirs


async def _publish_and_close(
    publisher: BatchedFirstStepPublisher, order_ids: list[uuid.UUID]
) -> None:
    try:
        await publisher.publish_first_steps(order_ids)
    finally:
        await publisher.close()
