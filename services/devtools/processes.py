"""Process groups and trees: stopping a child and everything it started, finding what a
process started (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def terminate_group(popen: subprocess.Popen[bytes], grace: float) -> bool:
    """SIGTERM a process started with start_new_session and everything in its group; True
    when the leader exited within `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGTERM)
    try:
        popen.wait(grace)
    except subprocess.TimeoutExpired:
        return False
    return True


def kill_group(popen: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the process's group, then reap the leader (bounded)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(5)


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


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
