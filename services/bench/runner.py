"""`fulfillment bench SCENARIO`: run scenarios against a private or a running stack,
print the tables, write the JSON (and the create plot)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from services.bench.context import PROFILES, ScenarioContext, target
from services.bench.environment import BenchEnvironment, BenchError, bench_environment
from services.bench.report import plot_create, print_report, write_json
from services.bench.scenarios import bulk, create, gateway, hot_sku, lifecycle, lifecycle_delayed, mixed
from services.common.config import Settings
from services.common.server import freeze_startup_heap, run_event_loop

SCENARIOS: dict[str, Callable[[ScenarioContext], Awaitable[dict[str, Any]]]] = {
    "create": create.run,
    "bulk": bulk.run,
    "hot-sku": hot_sku.run,
    "lifecycle": lifecycle.run,
    "lifecycle-delayed": lifecycle_delayed.run,
    "gateway": gateway.run,
    "mixed": mixed.run,
}
REPO_ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT_MB = 150


def run_bench(
    settings: Settings,
    scenario: str,
    *,
    profile: str = "full",
    target_running: bool = False,
    processes: int | None = None,
    workers: int = 16,
    worker_pool: str = "threads",
    out: Path | None = None,
    plot: Path | None = None,
    console: Console | None = None,
) -> int:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=150)
    names = list(SCENARIOS) if scenario == "all" else [scenario]
    processes = processes or settings.server_processes
    if out is None:
        out = REPO_ROOT / "benchmarks" / "results" / f"{scenario}.json"
        plot = plot or (out.parent / "create_throughput.png" if "create" in names else None)
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": _meta(scenario, profile, target_running, processes, workers, worker_pool),
        "scenarios": {},
    }
    try:
        with bench_environment(settings, target_running=target_running, processes=processes) as env:
            run_event_loop(_run_all(env, names, profile, workers, worker_pool, results, console))
            results["rss"] = env.rss_report()
            log_dir = env.log_dir
    except BenchError as exc:
        console.print(f"[red]bench: {exc}[/red]")
        return 2
    shutil.rmtree(log_dir, ignore_errors=True)
    results["memory_targets"] = [
        target(
            f"{service} peak RSS per process",
            f"<= {MEMORY_LIMIT_MB} MB",
            entry["peak_rss_mb"],
            entry["peak_rss_mb"] <= MEMORY_LIMIT_MB,
            "MB",
        )
        for service, entry in results["rss"].items()
    ]
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    print_report(results, console)
    write_json(results, out)
    console.print(f"bench: wrote {out}")
    if plot is not None and plot_create(results, plot):
        console.print(f"bench: wrote {plot}")
    failed = [
        f"{n}: {c}"
        for n, s in results["scenarios"].items()
        for c, ok in s.get("verdicts", {}).items()
        if not ok
    ]
    for failure in failed:
        console.print(f"[red]bench: correctness check failed: {failure}[/red]")
    console.print(f"bench: finished in {results['meta']['elapsed_s']:.0f}s")
    return 1 if failed else 0


async def _run_all(
    env: BenchEnvironment,
    names: list[str],
    profile: str,
    workers: int,
    worker_pool: str,
    results: dict[str, Any],
    console: Console,
) -> None:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        ctx = ScenarioContext(env, PROFILES[profile], progress, uuid.uuid4().hex[:8], workers, worker_pool)
        for name in names:
            # The load generator is Python too: keep its full collections short, as the
            # servers do (their pauses would count as the system's latency).
            freeze_startup_heap()
            began = time.monotonic()
            scenario_task = progress.add_task(f"[bold]{name}", total=None)
            result = await SCENARIOS[name](ctx)
            progress.remove_task(scenario_task)
            result["elapsed_s"] = round(time.monotonic() - began, 1)
            result["rss_so_far"] = {s: e["peak_rss_mb"] for s, e in env.rss_report().items()}
            results["scenarios"][name] = result
            console.print(f"bench: {name} done in {result['elapsed_s']:.0f}s")


def _meta(
    scenario: str, profile: str, target_running: bool, processes: int, workers: int, worker_pool: str
) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "scenario": scenario,
        "profile": profile,
        "stack": "running" if target_running else "private",
        "server_processes": processes,
        "worker_concurrency": workers,
        "worker_pool": worker_pool,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "commit": commit,
    }
