"""`fulfillment demo` against a running `fulfillment up`."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.conftest import Stack
from tests.support import REPO_ROOT, fulfillment_command

pytestmark = pytest.mark.e2e


def test_demo_runs_every_order_to_an_end(stack: Stack, service_env: dict[str, str]) -> None:
    env = {**service_env, "INVENTORY_ADDR": stack.inventory_addr, "ORDERS_ADDR": stack.orders_addr}
    result = subprocess.run(
        [*fulfillment_command("demo", "--orders", "15", "--timeout", "120")],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = re.search(r"delivered (\d+), failed (\d+), canceled (\d+) of (\d+)", result.stdout)
    assert summary, result.stdout[-2000:]
    delivered, failed, canceled, total = map(int, summary.groups())
    assert total == 15 and delivered + failed + canceled == total
    assert failed >= 2  # the deliberately unfulfillable orders
    assert "stock before" in result.stdout
