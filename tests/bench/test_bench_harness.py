"""`fulfillment bench all` at tiny sizes, so the harness cannot rot: every scenario runs
against a private stack, reports the fields the README promises, counts what it sent,
finds no oversell, and leaves no process behind. No timing is asserted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.bench.rss import peak_rss_mb
from services.bench.scenarios.lifecycle_delayed import up_lifecycle_parts
from services.bench.stats import percentile, summarize
from services.common.config import Settings
from services.devtools.processes import descendants
from tests.support import REPO_ROOT, fulfillment_command

STATS_FIELDS = {"count", "errors", "duration_s", "throughput", "p50_ms", "p95_ms", "p99_ms"}
SCENARIOS = {"create", "bulk", "hot-sku", "lifecycle", "lifecycle-delayed", "gateway", "mixed"}
# mixed measures the stack as `up` runs it, beside the peer's published figures: no limit.
WITHOUT_LIMIT = {"mixed"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, signing_key: str) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "all.json"
    plot = out.with_suffix(".png")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FULFILLMENT_", "GATEWAY_"))}
    # The bench mints its callers' tokens with this key: the test run's, never the user's.
    env["FULFILLMENT_AUTH_SIGNING_KEY"] = signing_key
    bench = subprocess.Popen(
        [
            *fulfillment_command("bench", "all", "--profile", "tiny", "--workers", "2"),
            "--out",
            str(out),
            "--plot",
            str(plot),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = bench.communicate(timeout=180)
    except BaseException:
        _stop_bench(bench)
        raise
    assert bench.returncode == 0, stdout[-4000:] + stderr[-4000:]
    data = json.loads(out.read_text())
    data["_stdout"] = stdout
    data["_plot"] = plot
    return data


def _stop_bench(bench: subprocess.Popen[str]) -> None:
    """Stop a bench that did not finish, and everything it started.

    Its services run in sessions of their own, so killing the bench (or its process group)
    alone would leave them running: each process of its tree is killed with its group
    first; then SIGINT lets the bench drop its private database and Redis db on the way
    out, and SIGKILL ends its own group if that does not finish in time.
    """
    for pid in descendants(bench.pid):
        if pid == bench.pid:
            continue
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)  # a service that leads its group, and its pool
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if bench.poll() is None:
        bench.send_signal(signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        bench.communicate(timeout=15)
    with contextlib.suppress(OSError):
        os.killpg(bench.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        bench.communicate(timeout=5)


pytestmark = [pytest.mark.e2e, pytest.mark.timeout(220)]


def test_every_scenario_reports_system_and_limit_figures(results: dict[str, Any]) -> None:
    assert set(results["scenarios"]) == SCENARIOS
    for name, scenario in results["scenarios"].items():
        assert scenario["rows"], name
        for row in scenario["rows"]:
            assert set(row["system"]) >= STATS_FIELDS, name
            assert row["system"]["count"] > 0, name
            if name in WITHOUT_LIMIT:
                assert "limit" not in row, name
                continue
            assert set(row["limit"]) >= STATS_FIELDS, name
            assert row["limit"]["count"] > 0, name
            assert row["ratio"] > 0, name
        assert scenario["targets"], name


def test_create_covers_each_concurrency_level_without_errors(results: dict[str, Any]) -> None:
    rows = results["scenarios"]["create"]["rows"]
    assert [row["concurrency"] for row in rows] == [1, 8]
    assert all(row["system"]["errors"] == 0 and row["limit"]["errors"] == 0 for row in rows)


def test_bulk_creates_every_order_it_sends(results: dict[str, Any]) -> None:
    bulk = results["scenarios"]["bulk"]
    assert bulk["checks"]["orders created"] == bulk["checks"]["orders sent"] == 40
    assert bulk["rows"][0]["limit"]["count"] == 40


def test_hot_sku_never_oversells_and_conserves_stock(results: dict[str, Any]) -> None:
    hot = results["scenarios"]["hot-sku"]
    checks = hot["checks"]
    assert all(hot["verdicts"].values()), hot["verdicts"]
    assert checks["final stock"] >= 0
    assert checks["initial stock"] - checks["units reserved"] == checks["final stock"]
    assert checks["units held by reservations"] == checks["units reserved"]
    assert checks["reservations refused for stock"] > 0  # stock ran out: the refusal path ran
    assert hot["rows"][0]["system"]["count"] == hot["rows"][0]["limit"]["count"] == 60


def test_lifecycle_delivers_every_order_and_every_noop_chain_finishes(results: dict[str, Any]) -> None:
    life = results["scenarios"]["lifecycle"]
    assert life["checks"]["delivered"] == 12 and life["checks"]["failed"] == 0
    assert life["rows"][0]["limit"]["count"] == 12 and life["rows"][0]["limit"]["errors"] == 0


def test_lifecycle_delayed_delivers_every_order_at_the_contract_delays_without_redrives(
    results: dict[str, Any], tmp_path: Path
) -> None:
    delayed = results["scenarios"]["lifecycle-delayed"]
    checks, walk = delayed["checks"], delayed["lifecycle"]
    assert delayed["verdicts"] == {
        "every order DELIVERED": True,
        "no order FAILED": True,
        "no order re-driven by the monitor": True,
        "monitor ran throughout": True,
    }
    assert checks["orders sent"] == checks["delivered"] == 24 and checks["rejected at intake"] == 0
    assert checks["re-driven by the monitor (its counter)"] == 0  # the monitor served its counter
    # The contract's delays (1-3 s), not the bench's 0: three drawn per order.
    low, high = (float(bound) for bound in checks["drawn step delays s (min-max)"].split("-"))
    assert 1.0 <= low <= high <= 3.0
    assert walk["drawn_delays_sum_p50_ms"] >= 3000
    assert walk["creation_to_delivered_p50_ms"] >= walk["drawn_delays_sum_p50_ms"] * 0.99
    assert 0 < walk["overhead_p50_ms"] <= walk["overhead_p99_ms"] <= walk["overhead_max_ms"]
    assert 1 <= walk["most_in_flight"] <= 24
    assert walk["worker_peak_rss_mb"] > 0 and walk["redis_db_peak_mb"] > 0
    # The worker as `up` runs it (its default --workers and pool).
    args, _ready_line = up_lifecycle_parts(Settings(), tmp_path)["worker"]
    assert f"`{' '.join(args[args.index('worker') : args.index('--liveness-file')])}`" in delayed["what"]
    assert walk["worker_processes"]
    row = delayed["rows"][0]
    assert row["case"] == "24 orders at 12/s" and row["limit"]["errors"] == 0
    assert {t["target"] for t in delayed["targets"]} == {
        "lifecycle-delayed delivered/s of the intake rate",
        "lifecycle-delayed overhead p99",
        "lifecycle-delayed worker peak RSS per process",
    }


def test_gateway_answers_every_http_request(results: dict[str, Any]) -> None:
    row = results["scenarios"]["gateway"]["rows"][0]
    assert row["system"]["errors"] == 0 and row["limit"]["errors"] == 0


def test_mixed_loads_the_stack_up_runs_at_each_concurrency_with_bulk_beside(results: dict[str, Any]) -> None:
    mixed = results["scenarios"]["mixed"]
    assert [(row["phase"], row["concurrency"]) for row in mixed["rows"]] == [
        ("delays 0.1-0.3 s", 8),
        ("delays 0.1-0.3 s", 32),
    ]
    for row in mixed["rows"]:
        assert row["system"]["errors"] == 0 and row["bulk_errors"] == 0
        assert row["bulk_orders"] == 20 and row["bulk_orders_per_s"] > 0
        assert row["steps_per_s"] >= row["delivered_per_s"] >= 0 and row["stack_pss_mb"] > 0


def test_mixed_delivers_every_order_it_created_and_stops_the_stack(results: dict[str, Any]) -> None:
    mixed = results["scenarios"]["mixed"]
    checks = {check.split(": ", 1)[1]: value for check, value in mixed["checks"].items()}
    created = sum(row["system"]["count"] + row["bulk_orders"] for row in mixed["rows"])
    assert checks["orders created"] >= created  # and the warm-up's
    assert checks["orders in the database"] == checks["delivered"] == checks["orders created"]
    assert checks["failed"] == 0 and checks["processes left running"] == 0
    assert all(mixed["verdicts"].values()), mixed["verdicts"]


def test_mixed_sums_the_pss_of_every_process_up_runs_envoy_included(results: dict[str, Any]) -> None:
    mixed = results["scenarios"]["mixed"]
    commands = [process["command"] for process in mixed["stack_pss_at_peak"]]
    for part in ("services.cli up", "serve inventory", "serve orders", "worker", "monitor", "envoy"):
        assert any(part in command for command in commands), part
    peak = sum(process["pss_mb"] for process in mixed["stack_pss_at_peak"])
    assert max(row["stack_pss_mb"] for row in mixed["rows"]) == pytest.approx(peak, abs=1)
    assert "mixed: stack total PSS (every process `up` runs)" in {t["target"] for t in mixed["targets"]}


def test_peak_rss_of_every_service_is_reported_and_nothing_is_left_running(results: dict[str, Any]) -> None:
    assert {"inventory", "orders", "worker", "gateway"} <= set(results["rss"])
    pids = [p["pid"] for entry in results["rss"].values() for p in entry["processes"]]
    assert all(p["peak_rss_mb"] > 0 for entry in results["rss"].values() for p in entry["processes"])
    assert [pid for pid in pids if peak_rss_mb(pid) is not None] == []
    assert {t["target"] for t in results["memory_targets"]} >= {"orders peak RSS per process"}


def test_tables_are_printed_and_the_plot_written(results: dict[str, Any]) -> None:
    headings = (
        "create:", "bulk:", "hot-sku:", "lifecycle:", "lifecycle-delayed:", "gateway:", "mixed:", "targets",
        "peak RSS",
    )
    for heading in headings:
        assert heading in results["_stdout"]
    plot: Path = results["_plot"]
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_percentiles_use_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) == 0.0
    stats = summarize([0.001, 0.002, 0.003], errors=1, duration_s=2.0)
    assert stats.count == 3 and stats.errors == 1 and stats.throughput == 1.5
