"""Rules every free-text field shares: bounded length and no control characters."""

from __future__ import annotations

import unicodedata

from services.common.errors import Validator

_LINE_BREAKS_AND_TABS = frozenset("\n\r\t")


def check_text(
    validator: Validator,
    field_path: str,
    value: str,
    *,
    max_length: int,
    required: bool = True,
    multiline: bool = False,
    identifier: bool = False,
) -> bool:
    """Record why `value` is unusable, if it is; True when it is fine.

    An identifier (sku, order id) may not start or end with whitespace, because two
    values that look the same to a person must not be different keys.
    """
    if not value.strip():
        return validator.check(not required, field_path, "must not be empty")
    if len(value) > max_length:
        validator.fail(field_path, f"must be at most {max_length} characters, got {len(value)}")
        return False
    if identifier and value != value.strip():
        validator.fail(field_path, "must not start or end with whitespace")
        return False
    allowed = _LINE_BREAKS_AND_TABS if multiline else frozenset()
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value):
        validator.fail(field_path, "must not contain control characters")
        return False
    return True
