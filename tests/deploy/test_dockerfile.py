"""deploy/Dockerfile, checked statically: stages, uv, the non-root user, what it copies."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib

import pytest

from tests.deploy.manifests import DOCKERFILE, REPO_ROOT, Instruction, dockerfile_stages

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return dockerfile_stages()


def of(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.arguments for i in stage if i.keyword == keyword]


def stage_name(stage: list[Instruction]) -> str:
    parts = stage[0].arguments.split()
    return parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else ""


def base_image(stage: list[Instruction]) -> str:
    image = stage[0].arguments.split()[0]
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), re.MULTILINE))
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], image)


def test_build_and_runtime_stages_share_one_python_base(stages: list[list[Instruction]]) -> None:
    assert [stage_name(s) for s in stages] == ["build", "runtime"]
    build, runtime = stages
    # The venv's interpreter is a link to the base image's Python: both stages need the same.
    assert base_image(build) == base_image(runtime)
    assert re.fullmatch(r"python:\d+\.\d+-slim(-\w+)?", base_image(runtime))


def test_base_python_satisfies_requires_python(stages: list[list[Instruction]]) -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", project["requires-python"])
    version = re.match(r"python:(\d+)\.(\d+)", base_image(stages[-1]))
    assert minimum and version
    assert tuple(map(int, version.groups())) >= tuple(map(int, minimum.groups()))


def test_build_stage_installs_the_locked_production_dependencies_with_pinned_uv(
    stages: list[list[Instruction]],
) -> None:
    build = stages[0]
    uv_copies = [c for c in of(build, "COPY") if "astral-sh/uv" in c]
    assert len(uv_copies) == 1
    assert re.search(r"--from=ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+ /uv ", uv_copies[0]), "pin uv"
    syncs = [r for r in of(build, "RUN") if "uv sync" in r]
    assert syncs and all("--frozen" in r and "--no-dev" in r for r in syncs)
    assert any("UV_PROJECT_ENVIRONMENT=/app/.venv" in e for e in of(build, "ENV"))


def test_runtime_stage_holds_only_the_venv_and_runs_as_non_root(stages: list[list[Instruction]]) -> None:
    runtime = stages[-1]
    assert "--from=build /app/.venv /app/.venv" in of(runtime, "COPY")
    assert not [r for r in of(runtime, "RUN") if "uv " in r]
    (user,) = of(runtime, "USER")
    assert user.split(":")[0] not in ("root", "0")
    assert re.fullmatch(r"\d+(:\d+)?", user), "numeric, so Kubernetes can check runAsNonRoot"
    assert any("/app/.venv/bin" in e for e in of(runtime, "ENV"))


def test_one_entrypoint_for_every_role(stages: list[list[Instruction]]) -> None:
    (entrypoint,) = of(stages[-1], "ENTRYPOINT")
    assert shlex.split(entrypoint.strip("[]").replace(",", " "))[-1] == "fulfillment"
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "fulfillment" in scripts


def test_copied_sources_exist_and_are_not_docker_ignored(stages: list[list[Instruction]]) -> None:
    ignored = [
        line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for stage in stages:
        for arguments in of(stage, "COPY"):
            words = [w for w in arguments.split() if not w.startswith("--")]
            if "--from=" in arguments:
                continue
            sources.extend(words[:-1])
    assert {"pyproject.toml", "uv.lock", "services"} <= set(sources)
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
