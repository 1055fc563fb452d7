"""Checking a live reply against what gateway/static/openapi.json documents for it.

Strict on purpose: every object the document describes is closed (a field the gateway
prints but the document does not name fails), the reply's status must be documented for
its operation (an error status may fall to `default` only when `allow_default`), and
timestamps must parse as RFC 3339."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from services.common import codegen


@cache
def document() -> dict[str, Any]:
    return json.loads(codegen.OPENAPI_DOCUMENT.read_text())


def _closed(node: Any) -> Any:
    if isinstance(node, dict):
        closed = {key: _closed(value) for key, value in node.items()}
        if closed.get("type") == "object" and "properties" in closed:
            closed.setdefault("additionalProperties", False)
        return closed
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


@cache
def _closed_components() -> dict[str, Any]:
    return _closed(copy.deepcopy(document()["components"]))


_FORMATS = FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not value.endswith("Z") or "T" not in value:
        raise ValueError(f"{value!r} is not an RFC 3339 UTC time")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def documented_schema(method: str, path: str, status: int, allow_default: bool = False) -> dict[str, Any]:
    """The JSON schema the document gives the reply of `method path` with `status`;
    `path` is the document's template, e.g. /v1/orders/{order_id}."""
    responses = document()["paths"][path][method.lower()]["responses"]
    response = responses.get(str(status))
    if response is None:
        assert allow_default and status >= 400, (
            f"{method} {path} answered {status}, which its documentation does not list: "
            f"{sorted(responses)}"
        )
        response = responses["default"]
    if "$ref" in response:
        response = document()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"]["application/json"]["schema"]


def assert_conforms(
    method: str, path: str, status: int, body: Any, allow_default: bool = False
) -> None:
    schema = {**documented_schema(method, path, status, allow_default), "components": _closed_components()}
    errors = sorted(
        Draft202012Validator(_closed(schema), format_checker=_FORMATS).iter_errors(body),
        key=lambda e: list(e.path),
    )
    assert not errors, (
        f"{method} {path} {status} does not match its documented schema:\n"
        + "\n".join(f"  at {list(e.path)}: {e.message}" for e in errors[:10])
        + f"\nbody: {json.dumps(body)[:2000]}"
    )
