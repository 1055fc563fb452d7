"""The step task messages the orders service pushes are the ones Celery's send_task would."""

from __future__ import annotations

import base64
import json

from kombu.serialization import dumps as kombu_dumps

from services.common.config import Settings
from services.common.lifecycle_tasks import LIFECYCLE_QUEUE, PUBLISHED_AT_HEADER, RUN_STEP_TASK
from services.orders.adapters.step_publisher import CeleryStepPublisher

ORDER_ID = "0b8f7c1e-6a43-4a52-9d3c-2f1a5e7d9b10"
PUBLISHED_AT = 1_700_000_000.25


def celery_message(publisher: CeleryStepPublisher, task_id: str, delivery_tag: str) -> dict:
    headers, properties, body, _ = publisher._sender.amqp.as_task_v2(
        task_id, RUN_STEP_TASK, args=[ORDER_ID, "PENDING"], kwargs={}
    )
    content_type, content_encoding, payload = kombu_dumps(body, serializer="json")
    return {
        "body": base64.b64encode(payload.encode(content_encoding)).decode("ascii"),
        "content-encoding": content_encoding,
        "content-type": content_type,
        "headers": {**headers, PUBLISHED_AT_HEADER: PUBLISHED_AT},
        "properties": {
            **properties,
            "delivery_mode": 2,
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": delivery_tag,
            "delivery_info": {"exchange": "", "routing_key": LIFECYCLE_QUEUE},
        },
    }


def test_each_message_equals_what_celery_builds_for_its_task_id():
    publisher = CeleryStepPublisher(Settings.from_env({}))
    try:
        for task_id, tag in (("t-1", "d-1"), ("t-2", "d-2")):
            message = json.loads(publisher.task_message(ORDER_ID, "PENDING", task_id, tag, PUBLISHED_AT))
            assert message == celery_message(publisher, task_id, tag)
    finally:
        publisher._sender.close()
