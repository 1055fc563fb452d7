"""Schemathesis against the live gateway, driven by gateway/static/openapi.json with an
admin token: generated requests (valid and invalid, boundary values, and stateful chains
through the document's inferred links) must never get a server error (5xx) nor a reply
that breaks its documented schema. Bounded: a fixed seed and 20 examples per operation,
about 15 s per run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common import codegen
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CHECKS = "not_a_server_error,response_schema_conformance"
MAX_EXAMPLES = 20
SEED = 20261130
RUN_TIMEOUT_S = 85


def run_schemathesis(
    stack: Stack, document: Path, report_dir: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    (authorization,) = stack.authorization().values()
    return subprocess.run(
        [
            SCHEMATHESIS, "run", str(document),
            "--url", stack.gateway,
            "--header", f"Authorization: {authorization}",
            "--checks", CHECKS,
            "--max-examples", str(MAX_EXAMPLES),
            "--seed", str(SEED),
            # One worker: with several, Hypothesis describes strategies by parsing source in
            # threads at once, which CPython 3.11's ast.parse does not survive ("AST
            # constructor recursion depth mismatch", a runtime error of the tool, not a
            # finding); one is about as fast here.
            "--workers", "1",
            "--request-timeout", "20",
            "--report", "junit",
            "--report-dir", str(report_dir),
            *extra,
        ],
        # Schemathesis keeps a cache of past failures (.schemathesis/) in its working
        # directory and replays them: each run starts from a fresh one, never the checkout.
        cwd=report_dir.parent,
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )


def test_schemathesis_finds_no_server_error_and_no_reply_off_its_schema(
    stack: Stack, tmp_path: Path
) -> None:
    run = run_schemathesis(stack, codegen.OPENAPI_DOCUMENT, tmp_path / "report")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "16 selected / 16 total" in run.stdout, run.stdout[-3000:]


def test_schemathesis_does_catch_a_reply_off_its_schema(stack: Stack, tmp_path: Path) -> None:
    """The run above would pass vacuously if the checks did not run: against a copy of the
    document whose error messages are numbers, a run on ListProducts (where bad page
    tokens are refused) must fail."""
    wrong = json.loads(codegen.OPENAPI_DOCUMENT.read_text())
    wrong["components"]["schemas"]["Error"]["properties"]["message"] = {"type": "integer"}
    document = tmp_path / "wrong.json"
    document.write_text(json.dumps(wrong))
    run = run_schemathesis(
        stack, document, tmp_path / "report",
        "--include-operation-id", "InventoryService_ListProducts", "--phases", "fuzzing",
        "--max-failures", "1",
    )
    assert run.returncode != 0, run.stdout[-3000:]
    assert "Response violates schema" in run.stdout, run.stdout[-3000:]
