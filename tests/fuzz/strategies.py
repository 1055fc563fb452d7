"""Hypothesis strategies for any protobuf request, built from its descriptor, and for bytes
that are almost (or not at all) a valid encoding of it.

Field values are random within the field's wire type (integers at the int32/int64 edges,
unicode text with NUL and control characters, enum numbers nobody defined, repeated fields
of random length, nested messages). `hints` gives, per field name, values that mean
something to the service (ids that exist, tokens it issued, statuses). A third of the
messages set every field and take each hinted one from its hint, so that many requests
are valid and reach the code behind validation and the first lookup; a third are such a
message with one field random; the rest leave fields out at random and mix hints into
random values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

Hints = Mapping[str, st.SearchStrategy[Any]]

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
_EDGES = [0, 1, -1, 2, 2**31 - 1, -(2**31), 2**31, 2**32 - 1, 2**32, 10**12, 10**12 + 1,
          2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1]
_MAX_DEPTH = 3
_MAX_REPEATED = 6

_F = FieldDescriptor
_INTEGER_RANGES = {
    _F.TYPE_INT64: INT64, _F.TYPE_SINT64: INT64, _F.TYPE_SFIXED64: INT64,
    _F.TYPE_UINT64: (0, 2**64 - 1), _F.TYPE_FIXED64: (0, 2**64 - 1),
    _F.TYPE_INT32: INT32, _F.TYPE_SINT32: INT32, _F.TYPE_SFIXED32: INT32,
    _F.TYPE_UINT32: (0, 2**32 - 1), _F.TYPE_FIXED32: (0, 2**32 - 1),
}

# Any code point a protobuf string can carry: everything but lone surrogates, which are
# not encodable as UTF-8 (so no client can send them in a string field).
_characters = st.characters(exclude_categories=("Cs",))
_texts = st.one_of(
    st.text(_characters, max_size=24),
    st.text(st.sampled_from("\x00\x01\x7f\t\n\r \u200b\u202e\ufeff\U0001f600é"), max_size=8),
    st.text(_characters, min_size=190, max_size=260),
)


def integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [value for value in _EDGES if low <= value <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def messages(descriptor: Descriptor, hints: Hints | None = None) -> st.SearchStrategy[Message]:
    return st.one_of(
        _messages(descriptor, hints or {}, 0, plausible=True),
        _one_field_off(descriptor, hints or {}, 0),
        _messages(descriptor, hints or {}, 0, plausible=False),
    )


def _messages(
    descriptor: Descriptor, hints: Hints, depth: int, plausible: bool
) -> st.SearchStrategy[Message]:
    message_class = message_factory.GetMessageClass(descriptor)
    if depth >= _MAX_DEPTH:
        return st.builds(message_class)
    fields = {
        field.name: _field_values(field, hints, depth, plausible) for field in descriptor.fields
    }
    # Plausible messages set every field (a hint stands for absence by its default, such
    # as an empty page token); the others leave any field out.
    values = st.fixed_dictionaries(fields) if plausible else st.fixed_dictionaries({}, optional=fields)
    return values.map(lambda drawn: _build(message_class, descriptor, drawn))


def _one_field_off(descriptor: Descriptor, hints: Hints, depth: int) -> st.SearchStrategy[Message]:
    """A plausible message with one field (or, in a nested message, one of its fields)
    random: where a value the validation lets through would meet the database alone."""
    message_class = message_factory.GetMessageClass(descriptor)
    if depth >= _MAX_DEPTH or not descriptor.fields:
        return st.builds(message_class)

    def with_one_off(name: str) -> st.SearchStrategy[Message]:
        fields = {}
        for field in descriptor.fields:
            if field.name != name:
                fields[field.name] = _field_values(field, hints, depth, plausible=True)
            elif field.message_type is not None and not _is_map(field):
                nested = _one_field_off(field.message_type, hints, depth + 1)
                repeated = _is_repeated(field)
                fields[field.name] = st.lists(nested, min_size=1, max_size=2) if repeated else nested
            else:
                fields[field.name] = _field_values(field, {}, depth, plausible=False)
        return st.fixed_dictionaries(fields).map(
            lambda drawn: _build(message_class, descriptor, drawn)
        )

    return st.sampled_from([field.name for field in descriptor.fields]).flatmap(with_one_off)


def _build(message_class: type[Message], descriptor: Descriptor, values: dict[str, Any]) -> Message:
    message = message_class()
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        target = getattr(message, name) if _is_repeated(field) else None
        if _is_map(field):
            for key, item in value.items():
                if field.message_type.fields_by_name["value"].message_type is not None:
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif target is not None:
            target.extend(value)
        elif field.message_type is not None:
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def _field_values(
    field: FieldDescriptor, hints: Hints, depth: int, plausible: bool
) -> st.SearchStrategy[Any]:
    if _is_map(field):
        entry = field.message_type
        return st.dictionaries(
            _single_values(entry.fields_by_name["key"], hints, depth, plausible),
            _single_values(entry.fields_by_name["value"], hints, depth, plausible),
            max_size=_MAX_REPEATED,
        )
    single = _single_values(field, hints, depth, plausible)
    if _is_repeated(field):
        if not plausible:
            return st.lists(single, max_size=_MAX_REPEATED)
        # Short, since longer lists mostly repeat a hinted id; a list of messages (the
        # items of an order) is rarely valid empty.
        return st.lists(single, min_size=1 if field.message_type else 0, max_size=2)
    return single


def _single_values(
    field: FieldDescriptor, hints: Hints, depth: int, plausible: bool
) -> st.SearchStrategy[Any]:
    hint = hints.get(field.name)
    if hint is not None and plausible:
        return hint
    generic = _by_type(field, hints, depth, plausible)
    return generic if hint is None else st.one_of(hint, generic)


def _by_type(
    field: FieldDescriptor, hints: Hints, depth: int, plausible: bool
) -> st.SearchStrategy[Any]:
    if field.type in _INTEGER_RANGES:
        return integers(*_INTEGER_RANGES[field.type])
    if field.type == _F.TYPE_DOUBLE:
        return st.floats()
    if field.type == _F.TYPE_FLOAT:
        return st.floats(width=32)
    if field.type == _F.TYPE_BOOL:
        return st.booleans()
    if field.type == _F.TYPE_STRING:
        return _texts
    if field.type == _F.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == _F.TYPE_ENUM:
        # Proto3 enums are open: any int32 is a valid number on the wire.
        known = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(known), integers(*INT32))
    if field.message_type is not None:
        return _messages(field.message_type, hints, depth + 1, plausible)
    raise NotImplementedError(f"no strategy for {field.full_name} (type {field.type})")


def _is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


def _is_map(field: FieldDescriptor) -> bool:
    return (
        _is_repeated(field)
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def corrupt_bytes(descriptor: Descriptor, hints: Hints | None = None) -> st.SearchStrategy[bytes]:
    """Bytes a broken or hostile client might send instead of a `descriptor` message:
    random bytes, a valid message cut short, with a byte flipped or with garbage after
    it, and unknown groups nested deeper than any decoder follows."""
    valid = messages(descriptor, hints).map(lambda message: message.SerializeToString())
    return st.one_of(
        st.binary(max_size=128),
        st.tuples(valid, st.integers(0, 10_000)).map(lambda cut: cut[0][: cut[1] % (len(cut[0]) + 1)]),
        st.tuples(valid, st.integers(0, 10_000), st.integers(1, 255)).map(_flip_byte),
        st.tuples(valid, st.binary(min_size=1, max_size=16)).map(lambda parts: parts[0] + parts[1]),
        st.integers(1, 300).map(lambda depth: b"\x0b" * depth + b"\x0c" * depth),
        st.just(b"\x00"),
    )


def _flip_byte(flip: tuple[bytes, int, int]) -> bytes:
    raw, position, mask = flip
    if not raw:
        return b"\x80"  # nothing to flip: a tag whose varint never ends instead
    index = position % len(raw)
    return raw[:index] + bytes([raw[index] ^ mask]) + raw[index + 1 :]
