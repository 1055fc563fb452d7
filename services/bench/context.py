"""What every scenario gets: the environment, its sizes, a progress display, a run tag."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.progress import Progress, TaskID

from services.bench.environment import BenchEnvironment


@dataclass(frozen=True)
class Sizes:
    """How much each scenario sends; `full` is what the published table uses."""

    create_levels: tuple[int, ...]
    create_seconds: float
    create_max_requests: int
    bulk_streams: int
    bulk_stream_size: int
    bulk_parallel_streams: int
    hot_sku_reservations: int
    hot_sku_concurrency: int
    lifecycle_orders: int
    lifecycle_timeout_s: float
    gateway_concurrency: int
    gateway_seconds: float
    gateway_max_requests: int


PROFILES = {
    "full": Sizes((1, 8, 32, 64), 6.0, 30_000, 16, 1000, 2, 4000, 64, 1500, 240.0, 32, 6.0, 30_000),
    "quick": Sizes((1, 8, 32, 64), 2.0, 8_000, 4, 1000, 2, 2000, 64, 600, 120.0, 32, 2.0, 8_000),
    "tiny": Sizes((1, 8), 0.3, 40, 2, 20, 2, 60, 8, 12, 60.0, 4, 0.3, 40),
}


@dataclass
class ScenarioContext:
    environment: BenchEnvironment
    sizes: Sizes
    progress: Progress
    tag: str
    worker_concurrency: int
    worker_pool: str = "threads"
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def task(self, description: str, total: float | None) -> tuple[TaskID, Callable[[int], None]]:
        task_id = self.progress.add_task(description, total=total)
        return task_id, lambda n=1: self.progress.advance(task_id, n)

    def finish(self, task_id: TaskID) -> None:
        self.progress.update(task_id, visible=False)
        self.environment.sample_rss()


def target(name: str, wanted: str, measured: float, met: bool, unit: str = "") -> dict[str, Any]:
    return {"target": name, "wanted": wanted, "measured": round(measured, 3), "unit": unit, "met": met}


def ratio(system: float, limit: float) -> float:
    return system / limit if limit > 0 else 0.0
