"""Several processes of one part, one /metrics: prometheus_client's multiprocess mode.

Used where one part runs as a family of processes: `fulfillment serve --processes N`
(forked server processes sharing a port) and the worker's prefork pool. Before the fork,
the parent switches prometheus_client to values kept in memory-mapped files, one file per
process and kind, in a directory of the part's own; the children inherit the switch and
write their series there; the parent, which serves /metrics, merges the files at every
scrape (counters and histograms summed, gauges as each says: series.py).

The directory is <tmp>/fulfillment-<part>-metrics-<parent pid>: created empty at start,
removed at exit, and directories that parents now dead left behind are removed at the
next start. The files of a child that exits stay until then, so counters never go back;
its "live" gauges (open watch streams) are dropped when it exits (mark_process_dead).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import values
from prometheus_client.multiprocess import mark_process_dead

from services.common.metrics import series

ENV = "PROMETHEUS_MULTIPROC_DIR"


class SharedFiles:
    """The files directory of one part's process family; made by the parent before it forks."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._owner = os.getpid()

    @classmethod
    def create(cls, part: str) -> SharedFiles:
        if series.created_any():
            raise RuntimeError("multiprocess metrics must be chosen before any series exists")
        base = Path(tempfile.gettempdir())
        prefix = f"fulfillment-{part}-metrics-"
        for leftover in base.glob(f"{prefix}*"):
            pid = leftover.name.removeprefix(prefix)
            if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
                shutil.rmtree(leftover, ignore_errors=True)
        directory = base / f"{prefix}{os.getpid()}"
        directory.mkdir(mode=0o700)
        # prometheus_client reads the variable when a value is created, and chose its value
        # class when it was imported: set both, for this process and every child it forks.
        os.environ[ENV] = str(directory)
        values.ValueClass = values.MultiProcessValue()
        return cls(directory)

    def process_exited(self, pid: int) -> None:
        mark_process_dead(pid, str(self.directory))

    def remove(self) -> None:
        """At the parent's exit (a forked child inherits this object and must not)."""
        if os.getpid() == self._owner:
            shutil.rmtree(self.directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process now holds that pid
    return True
