"""The results as readable tables, as JSON, and as the create throughput plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def print_report(results: dict[str, Any], console: Console) -> None:
    for name, scenario in results["scenarios"].items():
        unit = scenario.get("unit", "ops/s")
        table = Table(title=f"{name}: {scenario['what']}\nlimit: {scenario['limit']}", title_justify="left")
        extra = scenario.get("extra_columns", [])
        for column in (
            "case",
            f"system {unit}",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "errors",
            f"limit {unit}",
            "limit p99 ms",
            "ratio",
            *(heading for _, heading in extra),
        ):
            table.add_column(column, justify="left" if column == "case" else "right")
        for row in scenario["rows"]:
            system, limit = row["system"], row.get("limit") or {}
            table.add_row(
                row["case"],
                _fmt(system["throughput"]),
                _fmt(system["p50_ms"]),
                _fmt(system["p95_ms"]),
                _fmt(system["p99_ms"]),
                str(system["errors"]),
                _fmt(limit["throughput"]) if limit else "-",
                _fmt(limit["p99_ms"]) if limit else "-",
                f"{row['ratio']:.0%}" if limit else "-",
                *(_fmt(row[key]) for key, _ in extra),
            )
        console.print(table)
        for check, value in scenario.get("checks", {}).items():
            console.print(f"  {name} check {check}: {value}")
    targets = Table(title="targets", title_justify="left")
    for column in ("target", "wanted", "measured", "met"):
        targets.add_column(column)
    for item in all_targets(results):
        targets.add_row(
            item["target"],
            item["wanted"],
            f"{_fmt(item['measured'])} {item['unit']}".strip(),
            "yes" if item["met"] else "NO",
        )
    console.print(targets)
    memory = Table(title="peak RSS (VmHWM) per service process", title_justify="left")
    for column in ("service", "pid", "MB", "command"):
        memory.add_column(column)
    for service, entry in results.get("rss", {}).items():
        for process in entry["processes"]:
            memory.add_row(
                service, str(process["pid"]), f"{process['peak_rss_mb']:.0f}", process["command"][-70:]
            )
    console.print(memory)


def all_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = [t for scenario in results["scenarios"].values() for t in scenario.get("targets", [])]
    return found + results.get("memory_targets", [])


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def plot_create(results: dict[str, Any], path: Path) -> bool:
    """PNG of create throughput (and the echo limit) against concurrency; False when
    matplotlib (a dev dependency) is missing or there is no create result."""
    scenario = results["scenarios"].get("create")
    if scenario is None:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    levels = [row["concurrency"] for row in scenario["rows"]]
    figure, left = plt.subplots(figsize=(7, 4.2), dpi=110)
    left.plot(
        levels, [r["system"]["throughput"] for r in scenario["rows"]], "o-", label="CreateOrder (orders/s)"
    )
    left.plot(
        levels, [r["limit"]["throughput"] for r in scenario["rows"]], "s--", label="echo limit (calls/s)"
    )
    left.axhline(1000, color="grey", linestyle=":", label="target 1,000/s at c=32")
    left.set_xscale("log", base=2)
    left.set_xticks(levels, [str(level) for level in levels])
    left.set_xlabel("concurrent callers")
    left.set_ylabel("completed per second")
    left.set_yscale("log")
    right = left.twinx()
    right.plot(
        levels,
        [r["system"]["p99_ms"] for r in scenario["rows"]],
        "^:",
        color="tab:red",
        label="CreateOrder p99 (ms)",
    )
    right.set_ylabel("p99 latency, ms")
    lines = left.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    left.set_title(f"create: throughput vs concurrency ({results['meta']['date']})", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return True
