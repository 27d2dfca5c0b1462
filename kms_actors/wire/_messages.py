"""AWS's wording for malformed and invalid requests, as its JSON 1.1 front end (Coral) words it.

Two families:

- ``SerializationException`` messages, for a value of the wrong JSON type or a blob that is not
  base64. Coral reports the first one it meets and says nothing else.
- ``ValidationException`` messages, for model constraints. Coral collects every failure (at most
  ten) into one message: ``2 validation errors detected: <failure>; <failure>``, each failure
  reading ``Value 'x' at 'path' failed to satisfy constraint: <rule>``. Blobs and sensitive
  members are never echoed: their failures read ``Value at 'path' ...``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

#: Coral stops collecting constraint failures after this many.
MAX_FAILURES: Final = 10

LIST_FOUND: Final = "Start of list found where not expected"
MAP_FOUND: Final = "Start of structure or map found where not expected."
NOT_NULL: Final = "Member must not be null"
# AWS's spelling, typo included.
BASE64_LAST_CHARACTER: Final = "Invalid last non-pad Base64 character dectected"

_TARGETS: Final = {
    "string": "a String",
    "integer": "an Integer",
    "long": "a Long",
    "boolean": "a Boolean",
    "blob": "a Blob",
    "timestamp": "a Timestamp",
    "float": "a Float",
    "double": "a Double",
}


def _token(value: object) -> str:
    """Name a scalar the way Coral's JSON reader does (``STRING_VALUE``, ``TRUE_VALUE``...)."""
    if isinstance(value, str):
        return "STRING_VALUE"
    if value is True:
        return "TRUE_VALUE"
    if value is False:
        return "FALSE_VALUE"
    if isinstance(value, int | float):
        return "NUMBER_VALUE"
    # Only the embedded client can hand over non-JSON values (bytes where a string belongs...).
    return f"class {type(value).__qualname__}"


def mismatch(value: object, kind: str) -> str:
    """Return the SerializationException message for ``value`` where a ``kind`` shape belongs.

    Args:
        value: The offending value (never echoed).
        kind: The model type expected there (``"string"``, ``"list"``, ``"structure"``...).
    """
    is_list = isinstance(value, list | tuple)
    is_map = isinstance(value, Mapping)
    if kind == "structure":
        return LIST_FOUND if is_list else "Expected null"
    if kind == "list":
        return MAP_FOUND if is_map else "Expected list or null"
    if kind == "map":
        return LIST_FOUND if is_list else "Expected map or null"
    if is_list:
        return LIST_FOUND
    if is_map:
        return MAP_FOUND
    return f"{_token(value)} can not be converted to {_TARGETS.get(kind, 'a ' + kind)}"


def base64_length(length: int) -> str:
    """Return the message for a base64 string whose length is not a multiple of four."""
    return f"Base64 encoded length is expected a multiple of 4 bytes but found: {length}"


def base64_character(character: str | None) -> str:
    """Return the message for a character outside the base64 alphabet (None: do not echo it)."""
    if character is None:
        return "Invalid Base64 character"
    return f"Invalid Base64 character: '{character}'"


def length_at_most(limit: int) -> str:
    """Return the rule for strings (characters), blobs (bytes), lists and maps (entries)."""
    return f"Member must have length less than or equal to {limit}"


def length_at_least(limit: int) -> str:
    """Return the lower-bound counterpart of `length_at_most`."""
    return f"Member must have length greater than or equal to {limit}"


def value_at_most(limit: int) -> str:
    """Return the rule for numbers above their range."""
    return f"Member must have value less than or equal to {limit}"


def value_at_least(limit: int) -> str:
    """Return the rule for numbers below their range."""
    return f"Member must have value greater than or equal to {limit}"


def pattern(java_pattern: str) -> str:
    """Return the rule for a string that does not match the model's (Java) pattern."""
    return f"Member must satisfy regular expression pattern: {java_pattern}"


def enum(values: Iterable[str]) -> str:
    """Return the rule for a string outside the model's enum, listed in model order."""
    return f"Member must satisfy enum value set: [{', '.join(values)}]"


def nested(subject: str, rules: Iterable[str]) -> str:
    """Return the rule for list elements or map keys/values, which Coral reports at once.

    Args:
        subject: ``"Member"`` for list elements, ``"Map keys"`` or ``"Map value"`` for maps.
        rules: Every rule of the element shape (not only the failing ones), as Coral lists them.
    """
    return f"{subject} must satisfy constraint: [{', '.join(rules)}]"


def failure(path: str, shown: str | None, rule: str) -> str:
    """Return one failure: ``Value 'x' at 'path' failed to satisfy constraint: rule``.

    Args:
        path: Where the value sits, e.g. ``tags.1.member.tagKey``.
        shown: The value as AWS prints it (quoted, or ``null``); None for blobs and sensitive
            members, which AWS does not echo.
        rule: The constraint, from the rule functions above.
    """
    if shown is None:
        return f"Value at '{path}' failed to satisfy constraint: {rule}"
    return f"Value {shown} at '{path}' failed to satisfy constraint: {rule}"


def summary(failures: list[str]) -> str:
    """Join failures into the ValidationException message."""
    count = len(failures)
    plural = "error" if count == 1 else "errors"
    return f"{count} validation {plural} detected: {'; '.join(failures)}"


def java_text(value: Any) -> str:
    """Render a scalar as Java's ``toString`` would inside a list or map."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def quoted(text: str) -> str:
    """Quote a rendered value as AWS does in a failure."""
    return f"'{text}'"


def java_list(values: Iterable[Any]) -> str:
    """Render a list of scalars as ``'[a, b]'``."""
    return quoted(f"[{', '.join(java_text(value) for value in values if value is not None)}]")


def java_map(values: Mapping[Any, Any]) -> str:
    """Render a map of scalars as ``'{k=v, k2=v2}'``."""
    entries = (f"{key}={java_text(value)}" for key, value in values.items() if value is not None)
    return quoted(f"{{{', '.join(entries)}}}")
