"""End-to-end: a first-step message built by the orders service's batched publisher is
consumed by a real worker of the locked Celery version, which walks the order to its end."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from services.common.config import Settings
from services.common.lifecycle.tasks import LIFECYCLE_QUEUE
from services.orders.adapters.step_publisher import BatchedFirstStepPublisher
from tests.lifecycle.stack import Services, Status, purge_broker

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_a_worker_consumes_a_batch_published_first_step(services: Services, redis_url: str) -> None:
    purge_broker(redis_url)
    product = services.create_product(stock=5)
    who = f"handbuilt-{uuid.uuid4().hex[:8]}"
    order_id = services.place_order(who, [(product, 2)])
    # No worker runs yet: drop the message the orders service pushed and push our own.
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.delete(LIFECYCLE_QUEUE) == 1, "the orders service published no first step"
    finally:
        client.close()

    async def publish() -> None:
        publisher = BatchedFirstStepPublisher(Settings.from_env({"REDIS_URL": redis_url}))
        try:
            await publisher.publish_first_steps([uuid.UUID(order_id)])
        finally:
            await publisher.close()

    asyncio.run(publish())
    worker = services.start_worker(concurrency=1)
    try:
        (order,) = services.wait_all_terminal(who, 1, timeout=60)
    finally:
        worker.stop()
    assert order.status == Status.DELIVERED
    assert services.stock(product) == 3
