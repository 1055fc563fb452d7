"""The OpenAPI 3.1 document of every service with google.api.http bindings: the public
ones. Services without a binding (ReservationService, OrderLifecycleService) are not
routed by the gateway and are left out, with every message only they use.

Output is deterministic (paths and components sorted, properties in field order), so
the committed copy can be checked for freshness byte for byte."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from google.protobuf import descriptor_pb2

from services.common.openapi import errors
from services.common.openapi.descriptors import ProtoIndex
from services.common.openapi.operations import OperationBuilder, bindings
from services.common.openapi.schemas import Schema, SchemaBuilder

OPENAPI_VERSION = "3.1.0"
SECURITY_SCHEME = "bearerAuth"
DOCUMENT_PATH = "/openapi.json"
DOCUMENT_TAG = "Documentation"

INFO_DESCRIPTION = """\
HTTP/JSON through the gateway (Envoy's gRPC-JSON transcoder), generated from the protos by
`fulfillment codegen`.

- Field names are the protos' (snake_case) in and out; lowerCamelCase is accepted on input.
- 64-bit integers are printed as JSON strings and accepted as strings or numbers.
- Enums are printed as names (`"PENDING"`); a name or its number is accepted.
- Timestamps are RFC 3339 strings in UTC.
- Fields at their default (0, "", false, the first enum value, empty lists) are left out of
  replies; fields the gateway does not know are ignored on input.
- Streams: `POST /v1/orders:bulkCreate` takes a JSON array and answers a JSON array, one
  result per request; `GET /v1/orders/{order_id}:watch` answers a JSON array that grows as
  the order changes, until it reaches a terminal status.
- Errors: every non-2xx reply is `{"code", "message", "details"}` (a google.rpc.Status):
  the gRPC code, a message for a person, details for a program.
- Authentication: `Authorization: Bearer <JWT>` on every `/v1` route (a token from
  `fulfillment token --role admin|customer`); this document (`/openapi.json`) needs none."""


def build_document(files: Iterable[descriptor_pb2.FileDescriptorProto], to_generate: Iterable[str]) -> Schema:
    files = list(files)
    wanted = set(to_generate)
    index = ProtoIndex(files)
    schemas = SchemaBuilder(index)
    operations = OperationBuilder(index, schemas)
    paths: dict[str, dict[str, Schema]] = {}
    tags: list[Schema] = []
    for file in files:
        if file.name not in wanted:
            continue
        for service_proto in file.service:
            service = index.services[f"{file.package}.{service_proto.name}"]
            routed = [(m, b) for m in service_proto.method for b in bindings(m)]
            if not routed:
                continue
            tags.append(_tag(service_proto.name, index.comment(service.full_name)))
            for method in service_proto.method:
                for number, binding in enumerate(bindings(method)):
                    suffix = f"_{number + 1}" if number else ""
                    operation_id = f"{service_proto.name}_{method.name}{suffix}"
                    operation = operations.operation(service, method, binding, operation_id)
                    slot = paths.setdefault(binding.path, {})
                    if binding.verb in slot:
                        raise ValueError(f"{binding.verb.upper()} {binding.path} is bound twice")
                    slot[binding.verb] = operation
    paths[DOCUMENT_PATH] = {"get": _document_operation()}
    tags.append(_tag(DOCUMENT_TAG, "This description, served by the gateway without a token."))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Order fulfillment HTTP/JSON API",
            "version": "v1",
            "description": INFO_DESCRIPTION,
        },
        "servers": [{"url": "/", "description": "the gateway that serves this document"}],
        "security": [{SECURITY_SCHEME: []}],
        "tags": sorted(tags, key=lambda tag: tag["name"]),
        "paths": {path: dict(sorted(paths[path].items())) for path in sorted(paths)},
        "components": {
            "schemas": dict(sorted({**schemas.components, errors.ERROR_SCHEMA: errors.ERROR}.items())),
            "responses": {
                reply.name: errors.response_component(reply)
                for reply in sorted(errors.EVERY_REPLY, key=lambda r: r.name)
            },
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": (
                        "A JWT (RS256/ES256) with iss, aud, exp, sub and roles; locally "
                        "`fulfillment token --role admin` prints one."
                    ),
                }
            },
        },
    }


def render(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _tag(name: str, description: str) -> Schema:
    return {"name": name, "description": description} if description else {"name": name}


def _document_operation() -> Schema:
    return {
        "operationId": "OpenApiDocument",
        "tags": [DOCUMENT_TAG],
        "summary": "This document",
        "description": "The OpenAPI document itself; no token needed.",
        "security": [],
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    }
