"""JSON Schema for proto types, as Envoy's transcoder prints and parses them (proto3 JSON
with preserve_proto_field_names, enums printed as names, default values left out).

Messages and enums become components named by their full proto name; well-known types
are written inline, since their JSON is a string or a plain value, not their fields."""

from __future__ import annotations

from typing import Any

from services.common.openapi.descriptors import (
    FieldProto,
    MessageProto,
    ProtoIndex,
    declared_format,
    is_output_only,
    is_repeated,
    is_required,
)

Schema = dict[str, Any]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# 64-bit integers print as JSON strings (a JavaScript number cannot hold them exactly);
# either a string or a number is accepted on input.
INT64: Schema = {
    "type": ["string", "integer"],
    "format": "int64",
    "pattern": "^-?[0-9]{1,19}$",
    "minimum": INT64_MIN,
    "maximum": INT64_MAX,
    "description": "A 64-bit integer: printed as a JSON string; a string or a number is accepted.",
}
UINT64: Schema = {
    **INT64,
    "format": "uint64",
    "pattern": "^[0-9]{1,20}$",
    "minimum": 0,
    "maximum": 2**64 - 1,
    "description": "An unsigned 64-bit integer: printed as a JSON string; a string or a number is accepted.",
}
INT32: Schema = {"type": "integer", "format": "int32", "minimum": INT32_MIN, "maximum": INT32_MAX}
UINT32: Schema = {"type": "integer", "format": "uint32", "minimum": 0, "maximum": 2**32 - 1}
# Non-finite values print as the strings "NaN", "Infinity", "-Infinity".
FLOATING: Schema = {
    "oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]
}

_SCALARS: dict[int, Schema] = {
    FieldProto.TYPE_INT64: INT64,
    FieldProto.TYPE_SINT64: INT64,
    FieldProto.TYPE_SFIXED64: INT64,
    FieldProto.TYPE_UINT64: UINT64,
    FieldProto.TYPE_FIXED64: UINT64,
    FieldProto.TYPE_INT32: INT32,
    FieldProto.TYPE_SINT32: INT32,
    FieldProto.TYPE_SFIXED32: INT32,
    FieldProto.TYPE_UINT32: UINT32,
    FieldProto.TYPE_FIXED32: UINT32,
    FieldProto.TYPE_DOUBLE: {**FLOATING, "format": "double"},
    FieldProto.TYPE_FLOAT: {**FLOATING, "format": "float"},
    FieldProto.TYPE_BOOL: {"type": "boolean"},
    FieldProto.TYPE_STRING: {"type": "string"},
    FieldProto.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
}

ANY: Schema = {
    "type": "object",
    "description": "A message of the type `@type` names, its fields beside `@type`.",
    "required": ["@type"],
    "properties": {
        "@type": {"type": "string", "examples": ["type.googleapis.com/google.rpc.BadRequest"]}
    },
    "additionalProperties": True,
}

_WRAPPERS: dict[str, Schema] = {
    "DoubleValue": _SCALARS[FieldProto.TYPE_DOUBLE],
    "FloatValue": _SCALARS[FieldProto.TYPE_FLOAT],
    "Int64Value": INT64,
    "UInt64Value": UINT64,
    "Int32Value": INT32,
    "UInt32Value": UINT32,
    "BoolValue": {"type": "boolean"},
    "StringValue": {"type": "string"},
    "BytesValue": _SCALARS[FieldProto.TYPE_BYTES],
}

WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339, always UTC (Z), with 0, 3, 6 or 9 fractional digits.",
        "examples": ["2026-01-31T12:00:00.123456Z"],
    },
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
        "description": "Seconds with up to nine fractional digits and the suffix s, e.g. 1.5s.",
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated field paths.",
    },
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Any": ANY,
    **{f"google.protobuf.{name}": {**schema} for name, schema in _WRAPPERS.items()},
}


# google.api.field_info formats as JSON Schema formats.
_FORMATS = {"UUID4": "uuid", "IPV4": "ipv4", "IPV6": "ipv6"}


def component_ref(full_name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{full_name}"}


class SchemaBuilder:
    """Collects the components the document needs: only messages and enums reached from an
    operation, so internal-only messages stay out."""

    def __init__(self, index: ProtoIndex) -> None:
        self._index = index
        self.components: dict[str, Schema] = {}

    def type_schema(self, field: FieldProto) -> Schema:
        """One value of the field (an element, if the field is repeated)."""
        if field.type == FieldProto.TYPE_ENUM:
            return self.enum(field.type_name.lstrip("."))
        if field.type in (FieldProto.TYPE_MESSAGE, FieldProto.TYPE_GROUP):
            name = field.type_name.lstrip(".")
            if name in WELL_KNOWN:
                return dict(WELL_KNOWN[name])
            return self.message(name)
        schema = dict(_SCALARS[field.type])
        if field.type == FieldProto.TYPE_STRING:
            if declared_format(field) in _FORMATS:
                schema["format"] = _FORMATS[declared_format(field)]
            if is_required(field):
                # REQUIRED in proto3 means set, and an empty string is unset (AIP-203).
                schema["minLength"] = 1
        return schema

    def field_schema(self, field: FieldProto, owner: str) -> Schema:
        """The field's schema as a property: arrays and maps, its comment, readOnly."""
        map_entry = self._map_entry(field)
        if map_entry is not None:
            schema: Schema = {
                "type": "object",
                "additionalProperties": self.type_schema(map_entry.field[1]),
            }
        elif is_repeated(field):
            schema = {"type": "array", "items": self.type_schema(field)}
            if is_required(field):
                schema["minItems"] = 1
        else:
            schema = self.type_schema(field)
        description = self._index.comment(f"{owner}.{field.name}")
        if description:
            schema["description"] = description
        if is_output_only(field):
            schema["readOnly"] = True
        return schema

    def message(self, full_name: str) -> Schema:
        if full_name not in self.components:
            self.components[full_name] = {}  # reserved first: messages may refer to themselves
            self.components[full_name] = self.object_schema(full_name)
        return component_ref(full_name)

    def object_schema(self, full_name: str, leave_out: frozenset[str] = frozenset()) -> Schema:
        """The message as a JSON object, without the fields in `leave_out` (those a request
        takes from its path)."""
        message = self._index.message(full_name)
        fields = [f for f in message.field if f.name not in leave_out]
        schema: Schema = {"type": "object"}
        description = self._index.comment(full_name)
        if description:
            schema["description"] = description
        schema["properties"] = {f.name: self.field_schema(f, full_name) for f in fields}
        required = [f.name for f in fields if is_required(f)]
        if required:
            schema["required"] = required
        return schema

    def enum(self, full_name: str) -> Schema:
        if full_name not in self.components:
            enum = self._index.enums[full_name]
            names = [value.name for value in enum.value]
            notes = [
                f"- `{value.name}`: {text}"
                for value in enum.value
                if (text := self._index.comment(f"{full_name}.{value.name}"))
            ]
            description = "\n\n".join(
                part for part in (
                    self._index.comment(full_name),
                    "Printed as the value's name; the name or its number is accepted.",
                    "\n".join(notes),
                ) if part
            )
            self.components[full_name] = {"type": "string", "enum": names, "description": description}
        return component_ref(full_name)

    def _map_entry(self, field: FieldProto) -> MessageProto | None:
        if field.type != FieldProto.TYPE_MESSAGE or not is_repeated(field):
            return None
        entry = self._index.messages.get(field.type_name.lstrip("."))
        return entry if entry is not None and entry.options.map_entry else None
