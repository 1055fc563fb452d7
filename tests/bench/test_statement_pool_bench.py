"""`python -m services.bench.statement_pool` (the measurement behind StatementPool's
docstring) at a tiny size, so it cannot rot: every workload on every pool reports a
figure. No timing is asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import pytest

from services.bench.statement_pool import PATH, POOLS, Advances, OrdersExhausted
from tests.support import ADMIN_DSN, REPO_ROOT

pytestmark = pytest.mark.integration

WORKLOADS = ("update", "create", "advance")
# e.g. "create   c=2   asyncpg.Pool, no reset      2,906/s    143 us    422 us"
MEDIAN = re.compile(r"^(\w+) +c=\d+ +(.+?) +([\d,]+)/s ", re.MULTILINE)


def test_every_workload_reports_a_figure_on_every_pool() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULFILLMENT_")}
    finished = subprocess.run(
        [
            sys.executable, "-m", "services.bench.statement_pool", "--database-url", ADMIN_DSN,
            "--seconds", "0.2", "--repeat", "1", "--concurrency", "2",
            # 5,000 orders a caller, 20,000 transitions: more than a caller makes in the
            # 0.9 s of warm-up and measurement on any box seen (1,000 ran out once).
            "--orders-to-advance", "10000",
        ],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=90,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    medians = MEDIAN.findall(finished.stdout.split("medians of 1 runs", 1)[1])
    assert {(workload, pool) for workload, pool, _ in medians} == {
        (workload, pool) for workload in WORKLOADS for pool in POOLS
    }
    assert len(medians) == len(WORKLOADS) * len(POOLS)
    assert all(int(per_s.replace(",", "")) > 0 for _, _, per_s in medians)


def test_a_caller_out_of_orders_says_how_to_go_on() -> None:
    advances = Advances([])
    advances._shares = [[uuid.uuid4()]]  # one order: PATH's four transitions, then none
    for call in range(len(PATH) - 1):
        advances.params(0, call)
    with pytest.raises(OrdersExhausted, match="larger --orders-to-advance"):
        advances.params(0, len(PATH) - 1)
