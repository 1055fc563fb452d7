"""Resident memory of a process and everything it forked: peak RSS (VmHWM) and PSS."""

from __future__ import annotations

import os
from pathlib import Path

from services.devtools.processes import command_line, descendants


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of one process in MB, or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_tree_rss(pid: int) -> list[dict[str, object]]:
    """One entry per living process of the tree rooted at `pid`: pid, command, peak MB."""
    tree = []
    for member in descendants(pid):
        peak = peak_rss_mb(member)
        if peak is not None and member != os.getpid():
            tree.append({"pid": member, "command": command_line(member)[:160], "peak_rss_mb": round(peak, 1)})
    return tree


def pss_mb(pid: int) -> float | None:
    """Proportional set size of one process in MB (its private pages plus its share of
    pages it shares, e.g. with forked siblings), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_tree_pss(pid: int) -> list[dict[str, object]]:
    """One entry per living process of the tree rooted at `pid`: pid, command, PSS MB.
    Their sum is what the tree costs the machine (RSS would count shared pages twice)."""
    tree = []
    for member in descendants(pid):
        pss = pss_mb(member)
        if pss is not None and member != os.getpid():
            tree.append({"pid": member, "command": command_line(member)[:160], "pss_mb": round(pss, 1)})
    return tree
