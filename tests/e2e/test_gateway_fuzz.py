"""Property-based fuzz of every HTTP route of the public API through the real Envoy.

The routes come from the protos' google.api.http annotations, so a new route is fuzzed
without anyone adding it here. Each example sends random bytes, random JSON, or JSON of
the request's shape with values of the right or wrong type, in a path and query whose
values may be any bytes percent-escaped (invalid UTF-8 included). No reply may be a 5xx
(503 neither: the stack is up), and every non-2xx reply is the contract's JSON error.
Derandomized and bounded: the same examples every run, well under a minute in all.
Run alone with `uv run pytest -m fuzz tests/e2e`.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_from_bytes

import pytest
from google.api import annotations_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from services.common.proto.fulfillment.inventory.v1 import inventory_service_pb2
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2
from tests.e2e.conftest import Stack
from tests.e2e.gateway_replies import error_of, send

pytestmark = pytest.mark.e2e

UNKNOWN, INTERNAL = 2, 13
PUBLIC_SERVICES = [
    inventory_service_pb2.DESCRIPTOR.services_by_name["InventoryService"],
    orders_service_pb2.DESCRIPTOR.services_by_name["OrderService"],
]
PATH_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")


@dataclass(frozen=True)
class HttpRoute:
    rpc: str
    verb: str
    template: str
    body: str
    request: Descriptor
    client_streaming: bool

    def __str__(self) -> str:
        return f"{self.rpc}:{self.verb.upper()} {self.template}"

    @property
    def path_fields(self) -> list[str]:
        return PATH_VARIABLE.findall(self.template)


def public_routes() -> list[HttpRoute]:
    routes = []
    for service in PUBLIC_SERVICES:
        for method in service.methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            for binding in (rule, *rule.additional_bindings):
                verb = binding.WhichOneof("pattern")
                if verb is None:
                    continue
                template = getattr(binding, verb)
                if verb == "custom":
                    verb, template = template.kind, template.path
                routes.append(
                    HttpRoute(
                        method.name, verb, template, binding.body, method.input_type,
                        method.client_streaming,
                    )
                )
    return routes


ROUTES = public_routes()

# Percent-escapes that are not UTF-8 (or are, but mean something to a path parser).
_ESCAPE_TRAPS = [
    "%FF", "%C0%AE", "%C3%28", "%ED%A0%80", "%F4%90%80%80", "%E2%82", "%F0%9F%98", "%80",
    "%00", "%0A", "%2F", "%25", "%3F", "%23", "%2E%2E", "..", "",
]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)
_any_json = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_F = FieldDescriptor
_INT32 = {_F.TYPE_INT32, _F.TYPE_SINT32, _F.TYPE_SFIXED32, _F.TYPE_UINT32, _F.TYPE_FIXED32}
_INT64 = {_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64, _F.TYPE_UINT64, _F.TYPE_FIXED64}
_INTEGER_EDGES = [0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64]


def escaped_values(known: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A path segment or query value as it goes on the request line."""
    return st.one_of(
        st.sampled_from(known),
        st.lists(
            st.one_of(st.sampled_from(_ESCAPE_TRAPS), st.text(max_size=6).map(_escaped)),
            min_size=1, max_size=4,
        ).map("".join),
        st.binary(max_size=24).map(lambda raw: quote_from_bytes(raw, safe="")),
        st.text(max_size=24).map(_escaped),
        st.sampled_from(_INTEGER_EDGES).map(str),
    )


def _escaped(text: str) -> str:
    return quote(text, safe="")


def shaped_json(message: Descriptor, known: tuple[str, ...], depth: int = 0) -> st.SearchStrategy[Any]:
    """An object with some of the message's fields, each mostly of its type, now and then
    any JSON at all."""
    return st.fixed_dictionaries(
        {}, optional={field.name: _field_json(field, known, depth) for field in message.fields}
    )


def _field_json(field: FieldDescriptor, known: tuple[str, ...], depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = _single_json(field.message_type.fields_by_name["value"], known, depth)
        typed: st.SearchStrategy[Any] = st.dictionaries(st.text(max_size=8), value, max_size=3)
    elif field.is_repeated:
        typed = st.lists(_single_json(field, known, depth), max_size=3)
    else:
        typed = _single_json(field, known, depth)
    return st.one_of(typed, typed, typed, _any_json)


def _single_json(field: FieldDescriptor, known: tuple[str, ...], depth: int) -> st.SearchStrategy[Any]:
    if field.type == _F.TYPE_MESSAGE:
        if depth >= 3:
            return st.just({})
        return shaped_json(field.message_type, known, depth + 1)
    if field.type == _F.TYPE_ENUM:
        names = [value.name for value in field.enum_type.values]
        return st.one_of(st.sampled_from(names), st.integers(-3, 12), st.text(max_size=10))
    if field.type in _INT32 or field.type in _INT64:
        low, high = (-(2**31), 2**32) if field.type in _INT32 else (-(2**63), 2**64)
        number = st.one_of(st.sampled_from(_INTEGER_EDGES), st.integers(low, high))
        return st.one_of(number, number.map(str), st.sampled_from(known))
    if field.type == _F.TYPE_BOOL:
        return st.booleans()
    if field.type in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        finite = st.floats(allow_nan=False, allow_infinity=False)
        return st.one_of(finite, st.sampled_from(["NaN", "Infinity"]))
    return st.one_of(st.text(max_size=30), st.sampled_from(known), st.text(min_size=190, max_size=260))


def _filled(template: str, segments: tuple[str, ...]) -> str:
    remaining = iter(segments)
    return PATH_VARIABLE.sub(lambda _: next(remaining), template)


def _json_bytes(document: Any, ascii_only: bool) -> bytes:
    return json.dumps(document, ensure_ascii=ascii_only).encode()


@functools.cache
def requests_for(route: HttpRoute, known: tuple[str, ...]) -> st.SearchStrategy[tuple[str, bytes | None]]:
    """(target, body) for one request to `route`."""
    values = escaped_values(known)
    path = st.tuples(*[values] * len(route.path_fields)).map(
        functools.partial(_filled, route.template)
    )
    field_names = [field.name for field in route.request.fields]
    query_names = st.one_of(
        st.sampled_from(field_names) if field_names else st.nothing(),
        st.text(max_size=8).map(_escaped),
        st.sampled_from(_ESCAPE_TRAPS),
    )
    query = st.lists(st.tuples(query_names, values), max_size=4).map(
        lambda pairs: "?" + "&".join(f"{name}={value}" for name, value in pairs) if pairs else ""
    )
    target = st.tuples(path, query).map("".join)
    if not route.body:
        return st.tuples(target, st.none())
    message = shaped_json(route.request, known)
    document = st.lists(message, max_size=4) if route.client_streaming else message
    body = st.one_of(
        st.builds(_json_bytes, document, st.booleans()),
        st.builds(_json_bytes, _any_json, st.booleans()),
        st.binary(max_size=64),
    )
    return st.tuples(target, body)


@pytest.fixture(scope="module")
def known_ids(stack: Stack) -> tuple[str, ...]:
    """Ids that exist, so that part of the fuzz gets past the first lookup."""
    status, product = stack.http(
        "POST", "/v1/products",
        {"sku": f"fuzz-{uuid.uuid4().hex[:10]}", "name": "Fuzz", "price": "1.00", "initial_stock": 1000},
    )
    assert status == 200, product
    status, order = stack.http(
        "POST", "/v1/orders",
        {"customer_name": "Fuzz", "items": [{"product_id": product["product_id"], "quantity": 1}]},
    )
    assert status == 200, order
    return (product["product_id"], order["order_id"])


@pytest.mark.fuzz
@pytest.mark.parametrize("route", ROUTES, ids=str)
@settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_request_gets_a_5xx_and_every_error_has_the_contract_shape(
    stack: Stack, known_ids: tuple[str, ...], route: HttpRoute, data: st.DataObject
) -> None:
    target, body = data.draw(requests_for(route, known_ids), label="target, body")
    method = route.verb.upper()
    # As an admin, whom the policy allows every public RPC: what is fuzzed is the request.
    reply = send(stack.gateway, method, target, body, stack.authorization(), timeout=30)
    note(f"{method} {target} -> {reply}")
    assert reply.status < 500, str(reply)
    if not 200 <= reply.status < 300:
        assert error_of(reply)["code"] not in (UNKNOWN, INTERNAL), str(reply)
        return
    document = json.loads(reply.body)
    if route.client_streaming:
        codes = {result.get("status", {}).get("code", 0) for result in document}
        assert not codes & {UNKNOWN, INTERNAL}, str(reply)


def test_every_public_rpc_has_a_fuzzed_route() -> None:
    fuzzed = {route.rpc for route in ROUTES}
    assert fuzzed == {method.name for service in PUBLIC_SERVICES for method in service.methods}
