"""`fulfillment top --once` against /metrics endpoints served over HTTP by
prometheus_client, one of them not answering."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.cli import main
from services.devtools.stores import free_port
from tests.top.exposition import ORDER_SERVICE, PartMetrics, screen_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def served_orders() -> Iterator[tuple[PartMetrics, str]]:
    from prometheus_client import start_http_server

    orders = PartMetrics()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=orders.registry)
    try:
        yield orders, f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_top_once_shows_what_the_endpoints_serve_and_which_are_down(
    served_orders: tuple[PartMetrics, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    orders, addr = served_orders
    orders.created.inc(12)
    orders.by_status.labels("DELIVERED").set(11)
    orders.by_status.labels("SHIPPED").set(1)
    orders.queue.set(4)
    orders.call("CreateOrder", 0.003, times=12)
    monkeypatch.setenv("ORDERS_METRICS_ADDR", addr)
    monkeypatch.setenv("INVENTORY_METRICS_ADDR", f"127.0.0.1:{free_port()}")  # nothing there
    monkeypatch.setenv("WORKER_METRICS_ADDR", "")
    monkeypatch.setenv("MONITOR_METRICS_ADDR", "")
    monkeypatch.setenv("COLUMNS", "200")

    assert main(["top", "--once", "--interval", "0.2"]) == 0

    rows = screen_rows(capsys.readouterr().out)
    states = {row[0]: row[2] for row in rows if row[0] in ("inventory", "orders", "worker", "monitor")}
    assert states == {"inventory": "down", "orders": "up", "worker": "off", "monitor": "off"}
    assert ["-", "-", "-", "1", "11", "-", "-"] in rows  # orders by status, PENDING first
    (create,) = [row for row in rows if row[0] == f"{ORDER_SERVICE}/CreateOrder"]
    assert create[1] == "12"
    assert create[4] == "5.0 ms"  # all 12 in (2.5 ms, 5 ms]: p99 near its top
    (flow,) = [row for row in rows if row[-1].endswith("%")]
    assert flow[:4] == ["12", "0.0/s", "0.0/s", "4"]


def test_top_once_fails_when_no_endpoint_answers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in ("INVENTORY", "ORDERS", "WORKER", "MONITOR"):
        monkeypatch.setenv(f"{variable}_METRICS_ADDR", f"127.0.0.1:{free_port()}")
    assert main(["top", "--once", "--interval", "0.1"]) == 1
    assert [row[2] for row in screen_rows(capsys.readouterr().out)][:4] == ["down"] * 4
