"""The monitor's process loop against a real broker: it keeps sweeping while the orders
service is down, and stops on request."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
import redis

from services.common.config import Settings
from services.common.lifecycle.health import WorkerBeat, forget_beat, write_beat
from services.stale_monitor.runner import StopRequest, run_monitor
from tests.support import free_port, wait_until

pytestmark = pytest.mark.integration


def test_monitor_keeps_sweeping_while_the_orders_service_is_down_and_stops_on_request(
    caplog: pytest.LogCaptureFixture, settings: Settings
) -> None:
    # The test run's broker db and signing key, and services nowhere to be found.
    monitor_settings = replace(
        settings,
        orders_addr=f"127.0.0.1:{free_port()}",
        inventory_addr=f"127.0.0.1:{free_port()}",
        sweep_interval_s=0.05,
        grpc_deadline_s=0.5,
        monitor_metrics_addr="",  # an in-process monitor must not take the default port
    )
    # A live worker, so that the sweep goes as far as asking the (absent) orders service.
    broker = redis.Redis.from_url(monitor_settings.redis_url)
    write_beat(broker, WorkerBeat("fake-worker", time.time() + 60, True, 0, None, None))
    stop = StopRequest()
    exit_codes: list[int] = []
    monitor = threading.Thread(
        target=lambda: exit_codes.append(run_monitor(monitor_settings, stop)), daemon=True
    )
    monitor.start()
    try:
        wait_until(
            lambda: sum(r.getMessage() == "sweep_failed" for r in caplog.records) >= 2,
            timeout=30, what="two failed sweeps",
        )
    finally:
        stop.set()
        monitor.join(30)
        forget_beat(broker, "fake-worker")
        broker.close()

    assert not monitor.is_alive(), "the monitor did not stop on request"
    assert exit_codes == [0]
