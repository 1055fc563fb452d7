"""A part hosted in another's process (the monitor in the worker's, `fulfillment up`):
its log lines say which part it is, and its /metrics registry is its own."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from services.common.logs import log_event, speak_as
from services.stale_monitor.metrics import PrometheusStaleMetrics
from tests.support import JsonLines

pytestmark = pytest.mark.unit


@pytest.fixture
def root_lines() -> Iterator[JsonLines]:
    root = logging.getLogger()
    handler, level = JsonLines("worker"), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_lines_from_the_hosted_thread_say_its_part_and_the_others_the_host(root_lines: JsonLines) -> None:
    logger = logging.getLogger("tests.hosted")
    speak_as("hosted-part-thread", "monitor")
    hosted = threading.Thread(target=lambda: log_event(logger, "swept"), name="hosted-part-thread")
    hosted.start()
    hosted.join(5)
    log_event(logger, "stepped")
    services = {line["msg"]: line["service"] for line in root_lines.lines}
    assert services == {"swept": "monitor", "stepped": "worker"}


def test_the_hosted_monitor_counts_in_its_own_registry_not_the_hosts() -> None:
    def hosts_count() -> float | None:  # another test of this process may have counted
        return REGISTRY.get_sample_value("fulfillment_stale_orders_total", {"action": "redriven"})

    before = hosts_count()
    own = CollectorRegistry()
    PrometheusStaleMetrics(own).stale_order_handled("redriven")
    assert b'fulfillment_stale_orders_total{action="redriven"} 1.0' in generate_latest(own)
    assert hosts_count() == before


def test_with_monitor_refuses_the_prefork_pool_with_a_reason() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "worker", "--pool", "prefork", "--with-monitor"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "--with-monitor needs --pool threads" in result.stderr
    assert "Traceback" not in result.stderr
