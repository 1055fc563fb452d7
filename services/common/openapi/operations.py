"""One OpenAPI operation per google.api.http binding, with the transcoder's rules for
where each request field comes from: the path's `{field}` templates, the body (`*` is
every field the path does not bind), and the query string (every field left, nested
message fields by dotted names such as `page.size`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from services.common.openapi import errors
from services.common.openapi.descriptors import (
    FieldProto,
    ProtoIndex,
    Service,
    fields_along,
    is_repeated,
    is_required,
)
from services.common.openapi.schemas import WELL_KNOWN, Schema, SchemaBuilder

_TEMPLATE_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")


@dataclass(frozen=True)
class Binding:
    verb: str
    template: str
    body: str
    response_body: str

    @property
    def path(self) -> str:
        """The OpenAPI path: `{name=shelves/*}` becomes `{name}`."""
        return _TEMPLATE_VARIABLE.sub(lambda m: "{" + m.group(1) + "}", self.template)

    @property
    def path_fields(self) -> list[str]:
        return _TEMPLATE_VARIABLE.findall(self.template)


def bindings(method: descriptor_pb2.MethodDescriptorProto) -> list[Binding]:
    rule = method.options.Extensions[annotations_pb2.http]
    return [b for r in (rule, *rule.additional_bindings) if (b := _binding(r)) is not None]


def _binding(rule: http_pb2.HttpRule) -> Binding | None:
    pattern = rule.WhichOneof("pattern")
    if pattern is None:
        return None
    if pattern == "custom":
        return Binding(rule.custom.kind.lower(), rule.custom.path, rule.body, rule.response_body)
    return Binding(pattern, getattr(rule, pattern), rule.body, rule.response_body)


class OperationBuilder:
    def __init__(self, index: ProtoIndex, schemas: SchemaBuilder) -> None:
        self._index = index
        self._schemas = schemas

    def operation(
        self, service: Service, method: descriptor_pb2.MethodDescriptorProto, binding: Binding,
        operation_id: str,
    ) -> Schema:
        request_name = method.input_type.lstrip(".")
        request = self._index.message(request_name)
        path_fields = binding.path_fields
        parameters = [self._path_parameter(request_name, name) for name in path_fields]
        top_path_fields = {name.split(".")[0] for name in path_fields}
        if binding.body != "*":
            skip = top_path_fields | {binding.body}
            for field in request.field:
                if field.name not in skip:
                    parameters += self._query_parameters(field, request_name, "", frozenset())
        full_method = f"{service.full_name}.{method.name}"
        operation: Schema = {
            "operationId": operation_id,
            "tags": [service.proto.name],
            "summary": method.name,
        }
        description = self._index.comment(full_method)
        if method.server_streaming:
            description = "\n\n".join(filter(None, (description, _STREAM_NOTE)))
        if description:
            operation["description"] = description
        if parameters:
            operation["parameters"] = parameters
        if binding.body:
            operation["requestBody"] = self._request_body(
                request_name, binding.body, frozenset(top_path_fields), method.client_streaming
            )
        operation["responses"] = {
            "200": self._success(method, binding),
            **{r.status: errors.response_ref(r) for r in self._error_replies(full_method, request, binding)},
        }
        return operation

    def _path_parameter(self, request_name: str, dotted: str) -> Schema:
        walked = fields_along(self._index, self._index.message(request_name), dotted)
        owner = walked[-2].type_name.lstrip(".") if len(walked) > 1 else request_name
        schema = self._schemas.field_schema(walked[-1], owner)
        description = schema.pop("description", None)
        schema.pop("readOnly", None)
        parameter: Schema = {"name": dotted, "in": "path", "required": True, "schema": schema}
        if description:
            parameter["description"] = description
        return parameter

    def _query_parameters(
        self, field: FieldProto, owner: str, prefix: str, seen: frozenset[str]
    ) -> Iterator[Schema]:
        name = prefix + field.name
        type_name = field.type_name.lstrip(".")
        is_message = field.type == FieldProto.TYPE_MESSAGE
        if is_message and type_name not in WELL_KNOWN:
            # A repeated message (or a map) has no query form; a message nests by dotted names.
            if is_repeated(field) or type_name in seen:
                return
            for inner in self._index.message(type_name).field:
                yield from self._query_parameters(inner, type_name, name + ".", seen | {owner})
            return
        schema = self._schemas.field_schema(field, owner)
        if schema.pop("readOnly", False):
            return
        parameter: Schema = {"name": name, "in": "query"}
        description = schema.pop("description", None)
        if description:
            parameter["description"] = description
        if is_required(field) and not prefix:
            parameter["required"] = True
        if is_repeated(field):
            parameter["style"], parameter["explode"] = "form", True
        parameter["schema"] = schema
        yield parameter

    def _request_body(
        self, request_name: str, body: str, path_fields: frozenset[str], client_streaming: bool
    ) -> Schema:
        request = self._index.message(request_name)
        if body != "*":
            schema = self._schemas.field_schema(fields_along(self._index, request, body)[-1], request_name)
        elif path_fields:
            schema = self._schemas.object_schema(request_name, leave_out=path_fields)
        else:
            schema = self._schemas.message(request_name)
        if client_streaming:
            schema = {
                "type": "array",
                "items": schema,
                "description": "Every request of the stream, as one JSON array.",
            }
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def _success(self, method: descriptor_pb2.MethodDescriptorProto, binding: Binding) -> Schema:
        response_name = method.output_type.lstrip(".")
        if binding.response_body:
            response = self._index.message(response_name)
            field = fields_along(self._index, response, binding.response_body)[-1]
            schema = self._schemas.field_schema(field, response_name)
        else:
            schema = WELL_KNOWN.get(response_name) or self._schemas.message(response_name)
        description = "OK"
        if method.server_streaming:
            schema = {"type": "array", "items": schema}
            description = "OK: a JSON array, each message an element as the server sends it"
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    def _error_replies(
        self, full_method: str, request: descriptor_pb2.DescriptorProto, binding: Binding
    ) -> list[errors.ErrorReply]:
        replies = {errors.UNAUTHENTICATED, errors.PERMISSION_DENIED, errors.RESOURCE_EXHAUSTED}
        if request.field:
            replies.add(errors.BAD_REQUEST)
        if binding.path_fields:
            replies.add(errors.NOT_FOUND)
        if binding.body:
            replies.add(errors.PAYLOAD_TOO_LARGE)
        replies.update(errors.SERVICE_SPECIFIC.get(full_method, ()))
        replies.add(errors.OTHER)
        return sorted(replies, key=lambda r: (r.status == "default", r.status))


_STREAM_NOTE = (
    "Over HTTP the stream is one JSON array sent as it grows (chunked): `[` first, then each "
    "message as the server sends it, `]` when the stream ends. Read it incrementally."
)
