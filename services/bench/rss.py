"""Peak resident memory (VmHWM) of a process and everything it forked."""

from __future__ import annotations

import os
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """`pid` and all its living descendants (read from /proc, so Linux only)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may contain spaces; fields resume after ')'.
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(parents.get(current, []))
    return found


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of one process in MB, or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def process_tree_rss(pid: int) -> list[dict[str, object]]:
    """One entry per living process of the tree rooted at `pid`: pid, command, peak MB."""
    tree = []
    for member in descendants(pid):
        peak = peak_rss_mb(member)
        if peak is not None and member != os.getpid():
            tree.append({"pid": member, "command": command_line(member)[:160], "peak_rss_mb": round(peak, 1)})
    return tree
