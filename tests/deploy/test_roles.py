"""Every role's command in compose and Kubernetes is one the `fulfillment` CLI accepts."""

from __future__ import annotations

import pytest

from services.cli import build_parser
from tests.deploy.manifests import APP_IMAGE, load_compose, pod_spec, workloads

pytestmark = pytest.mark.unit

# service or workload -> the CLI verb (and service) it must run
EXPECTED = {
    "migrate": ("migrate", None),
    "inventory": ("serve", "inventory"),
    "orders": ("serve", "orders"),
    "worker": ("worker", None),
    "monitor": ("monitor", None),
}


def role_commands() -> list[tuple[str, str, list[str]]]:
    commands = [
        ("compose", name, service["command"])
        for name, service in load_compose()["services"].items()
        if service.get("image", "").split(":")[0] == APP_IMAGE
    ]
    for name, workload in workloads():
        for container in pod_spec(workload)["containers"]:
            if container["image"] == APP_IMAGE:
                commands.append(("k8s", f"{name}:{container['name']}", container["args"]))
    return commands


def test_every_role_is_deployed_both_ways() -> None:
    roles = {(where, name.split(":")[-1]) for where, name, _ in role_commands()}
    assert roles == {(where, role) for where in ("compose", "k8s") for role in EXPECTED}


@pytest.mark.parametrize(("where", "name", "command"), role_commands())
def test_role_command_parses_with_the_cli(where: str, name: str, command: list[str]) -> None:
    try:
        args = build_parser().parse_args(command)
    except SystemExit:
        pytest.fail(f"{where} {name}: `fulfillment {' '.join(command)}` is not a valid command")
    role = name.split(":")[-1]
    assert (args.command, getattr(args, "service", None)) == EXPECTED[role]
