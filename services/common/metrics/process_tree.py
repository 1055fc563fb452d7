"""process_* series for a process and the children it forked, as one.

A part that runs as several processes (`serve --processes N`, the worker's prefork pool)
serves one aggregate from its parent, where prometheus_client's own ProcessCollector would
see the parent alone: an idle supervisor. This collector reads /proc for the parent and
its living children at each scrape and reports the usual names, summed (CPU, memory, open
descriptors) or the parent's own (start time, descriptor limit), so dashboards read the
part the same way whatever its process count. Linux only; elsewhere it reports nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.devtools.processes import descendants

_PROC = Path("/proc")

PART_PROCESSES = "fulfillment_part_processes"
PART_PROCESSES_HELP = "Living processes of this part (a parent and its children, or the one)."


@dataclass(frozen=True)
class _Usage:
    cpu_s: float
    virtual_bytes: float
    resident_bytes: float
    open_fds: int
    start_ticks: float


class ProcessTreeCollector(Collector):
    def __init__(self, root_pid: int | None = None) -> None:
        self._root = root_pid or os.getpid()
        self._ticks = float(os.sysconf("SC_CLK_TCK"))
        self._page = float(os.sysconf("SC_PAGE_SIZE"))
        self._boot_time = _boot_time()

    def collect(self) -> Iterable[Metric]:
        if self._boot_time is None:
            return []
        members = descendants(self._root)
        usages = [usage for pid in members if (usage := self._usage(pid)) is not None]
        root = self._usage(self._root)
        if root is None or not usages:
            return []
        families: list[Metric] = [
            CounterMetricFamily(
                "process_cpu_seconds", "User and system CPU time of the part's processes, summed.",
                value=sum(u.cpu_s for u in usages),
            ),
            GaugeMetricFamily(
                "process_resident_memory_bytes", "Resident memory of the part's processes, summed.",
                value=sum(u.resident_bytes for u in usages),
            ),
            GaugeMetricFamily(
                "process_virtual_memory_bytes", "Virtual memory of the part's processes, summed.",
                value=sum(u.virtual_bytes for u in usages),
            ),
            GaugeMetricFamily(
                "process_open_fds", "Open file descriptors of the part's processes, summed.",
                value=sum(u.open_fds for u in usages),
            ),
            GaugeMetricFamily(
                "process_start_time_seconds", "Start time of the part's parent process (epoch seconds).",
                value=self._boot_time + root.start_ticks / self._ticks,
            ),
            GaugeMetricFamily(PART_PROCESSES, PART_PROCESSES_HELP, value=len(usages)),
        ]
        max_fds = _max_fds(self._root)
        if max_fds is not None:
            families.append(
                GaugeMetricFamily(
                    "process_max_fds", "Open file descriptor limit of each of the part's processes.",
                    value=max_fds,
                )
            )
        return families

    def _usage(self, pid: int) -> _Usage | None:
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
            open_fds = len(os.listdir(_PROC / str(pid) / "fd"))
        except OSError:
            return None  # exited since it was listed
        # The command name in parentheses may contain spaces; fields resume after ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        return _Usage(
            cpu_s=(float(fields[11]) + float(fields[12])) / self._ticks,
            virtual_bytes=float(fields[20]),
            resident_bytes=float(fields[21]) * self._page,
            open_fds=open_fds,
            start_ticks=float(fields[19]),
        )


class OneProcessCollector(Collector):
    """fulfillment_part_processes for a part that runs as one process (prometheus_client's
    own collector serves its process_*), so the series reads the same in both shapes."""

    def collect(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(PART_PROCESSES, PART_PROCESSES_HELP, value=1.0)]


def _boot_time() -> float | None:
    try:
        for line in (_PROC / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _max_fds(pid: int) -> float | None:
    try:
        for line in (_PROC / str(pid) / "limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return float(line.split()[3])
    except OSError:
        pass
    return None
