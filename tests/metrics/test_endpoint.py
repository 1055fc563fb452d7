"""The /metrics listener: a port that cannot be bound is one clear error line and the
part goes on; an empty address listens nowhere."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from prometheus_client import CollectorRegistry

from services.common.metrics.endpoint import PartMetrics, start_endpoint
from tests.metrics.scrape import Scrape, scrape

pytestmark = pytest.mark.integration


def test_a_taken_port_logs_metrics_unavailable_with_the_address_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        with caplog.at_level(logging.ERROR, logger="fulfillment.metrics"):
            assert start_endpoint(addr, CollectorRegistry(), "inventory") is None

    (record,) = [r for r in caplog.records if r.getMessage() == "metrics_unavailable"]
    fields = record.fields  # type: ignore[attr-defined]
    assert record.levelno == logging.ERROR
    assert fields["addr"] == addr and fields["part"] == "inventory"
    assert "in use" in fields["reason"].lower(), json.dumps(fields)


def test_an_empty_address_serves_nothing() -> None:
    metrics = PartMetrics("orders", "")
    metrics.serve()
    assert not metrics.enabled and metrics.endpoint is None
    metrics.close()


def test_an_address_serves_the_process_series_until_closed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics = PartMetrics("orders", f"127.0.0.1:{port}")
    metrics.serve()
    try:
        served = scrape(f"http://127.0.0.1:{port}/metrics")
        assert served.has("process_cpu_seconds_total") and served.has("python_info", **_info(served))
        assert served.value("fulfillment_part_processes") == 1
    finally:
        metrics.close()
    with pytest.raises(OSError):
        scrape(f"http://127.0.0.1:{port}/metrics", timeout=2)


def _info(served: Scrape) -> dict[str, str]:
    (labels,) = served.named("python_info")
    return dict(labels)
