"""Structured logging: one JSON object per line, extra fields under `fields`; inside a span
(when tracing is on) the line carries its `trace_id` and `span_id`."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

_configured = False
# The active span's trace_id and span_id, set by services.common.tracing while this
# process traces; None (no tracing) costs a line one check and no OTel import.
_trace_fields: Callable[[], dict[str, str]] | None = None


def set_trace_fields(source: Callable[[], dict[str, str]] | None) -> None:
    global _trace_fields
    _trace_fields = source


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        # `part`: set on the lines of a part hosted in another's process (speak_as).
        service = getattr(record, "part", None) or self.service
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            **({"service": service} if service else {}),
            "msg": record.getMessage(),
        }
        if _trace_fields is not None:
            payload.update(_trace_fields())
        payload.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO", service: str | None = None) -> None:
    global _configured
    root = logging.getLogger()
    if _configured:
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    # Alembic announces its plugins and dialect on every run; `fulfillment migrate` logs
    # one line per schema with the revision it reached instead.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    _configured = True


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured line: `event` as the message, `fields` as top-level keys."""
    logger.log(level, event, extra={"fields": fields})


class _ThreadSpeaksAs(logging.Filter):
    def __init__(self, thread_name: str, part: str) -> None:
        super().__init__()
        self.thread_name = thread_name
        self.part = part

    def filter(self, record: logging.LogRecord) -> bool:
        if record.threadName == self.thread_name:
            record.part = self.part
        return True


def speak_as(thread_name: str, part: str) -> None:
    """Lines logged from the thread named `thread_name` carry `service: part`: a part
    that runs as a thread of another's process (the monitor in the worker's, `up`) still
    says which part it is."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(_ThreadSpeaksAs(thread_name, part))
