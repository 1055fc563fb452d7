"""The protos as protoc hands them to a plugin, indexed by full name, with their comments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from google.api import field_behavior_pb2, field_info_pb2
from google.protobuf import descriptor_pb2

FieldProto: TypeAlias = descriptor_pb2.FieldDescriptorProto
MessageProto: TypeAlias = descriptor_pb2.DescriptorProto
EnumProto: TypeAlias = descriptor_pb2.EnumDescriptorProto

# Path components of SourceCodeInfo locations (descriptor.proto's field numbers).
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED_MESSAGE, _NESTED_ENUM = 2, 3, 4
_ENUM_VALUE, _METHOD = 2, 2


@dataclass(frozen=True)
class Service:
    full_name: str
    proto: descriptor_pb2.ServiceDescriptorProto


class ProtoIndex:
    """Messages and enums by full name (no leading dot), and the comment written above
    every message, field, enum, enum value, service and method, by full name."""

    def __init__(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        self.messages: dict[str, MessageProto] = {}
        self.enums: dict[str, EnumProto] = {}
        self.services: dict[str, Service] = {}
        self.comments: dict[str, str] = {}
        for file in files:
            self._add_file(file)

    def message(self, type_name: str) -> MessageProto:
        return self.messages[type_name.lstrip(".")]

    def comment(self, full_name: str) -> str:
        return self.comments.get(full_name, "")

    def _add_file(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        texts = {
            tuple(location.path): _clean(location.leading_comments or location.trailing_comments)
            for location in file.source_code_info.location
        }
        prefix = file.package
        for i, message in enumerate(file.message_type):
            self._add_message(_join(prefix, message.name), message, (_MESSAGE, i), texts)
        for i, enum in enumerate(file.enum_type):
            self._add_enum(_join(prefix, enum.name), enum, (_ENUM, i), texts)
        for i, service in enumerate(file.service):
            name = _join(prefix, service.name)
            self.services[name] = Service(name, service)
            self._note(name, texts.get((_SERVICE, i)))
            for j, method in enumerate(service.method):
                self._note(f"{name}.{method.name}", texts.get((_SERVICE, i, _METHOD, j)))

    def _add_message(
        self, name: str, message: MessageProto, path: tuple[int, ...], texts: dict[tuple[int, ...], str]
    ) -> None:
        self.messages[name] = message
        self._note(name, texts.get(path))
        for j, field in enumerate(message.field):
            self._note(f"{name}.{field.name}", texts.get((*path, _FIELD, j)))
        for k, nested in enumerate(message.nested_type):
            self._add_message(f"{name}.{nested.name}", nested, (*path, _NESTED_MESSAGE, k), texts)
        for k, enum in enumerate(message.enum_type):
            self._add_enum(f"{name}.{enum.name}", enum, (*path, _NESTED_ENUM, k), texts)

    def _add_enum(
        self, name: str, enum: EnumProto, path: tuple[int, ...], texts: dict[tuple[int, ...], str]
    ) -> None:
        self.enums[name] = enum
        self._note(name, texts.get(path))
        for j, value in enumerate(enum.value):
            self._note(f"{name}.{value.name}", texts.get((*path, _ENUM_VALUE, j)))

    def _note(self, full_name: str, text: str | None) -> None:
        if text:
            self.comments[full_name] = text


def behaviors(field: FieldProto) -> set[int]:
    """The field's google.api.field_behavior values (OUTPUT_ONLY, REQUIRED, ...)."""
    return set(field.options.Extensions[field_behavior_pb2.field_behavior])


def is_required(field: FieldProto) -> bool:
    return field_behavior_pb2.REQUIRED in behaviors(field)


def is_output_only(field: FieldProto) -> bool:
    return field_behavior_pb2.OUTPUT_ONLY in behaviors(field)


def declared_format(field: FieldProto) -> str:
    """The field's google.api.field_info format name (UUID4, IPV4, ...), or ""."""
    if not field.options.HasExtension(field_info_pb2.field_info):
        return ""
    info = field.options.Extensions[field_info_pb2.field_info]
    return str(field_info_pb2.FieldInfo.Format.Name(info.format))


def is_repeated(field: FieldProto) -> bool:
    return bool(field.label == FieldProto.LABEL_REPEATED)


def field_named(message: MessageProto, name: str) -> FieldProto:
    for field in message.field:
        if field.name == name:
            return field
    raise ValueError(f"{message.name} has no field {name!r}")


def fields_along(index: ProtoIndex, message: MessageProto, dotted: str) -> Sequence[FieldProto]:
    """The fields a dotted path such as `shelf.book_id` walks through, outermost first."""
    walked: list[FieldProto] = []
    for part in dotted.split("."):
        field = field_named(message, part)
        walked.append(field)
        if field.type == FieldProto.TYPE_MESSAGE:
            message = index.message(field.type_name)
    return walked


def _clean(comment: str) -> str:
    """A proto comment as prose: the space after each `//` gone, blank edges trimmed."""
    lines = [line[1:] if line.startswith(" ") else line for line in comment.splitlines()]
    return "\n".join(line.rstrip() for line in lines).strip()


def _join(package: str, name: str) -> str:
    return f"{package}.{name}" if package else name
