"""Scalar checks: JSON types, base64, Java patterns and constraints, as AWS applies them.

A scalar shape compiles into a `Scalar`: a *measure* that type-checks a value (raising
``SerializationException`` in AWS's words) and returns what the constraints look at, plus the
constraints themselves. `kms_actors.wire._validate` builds the container and structure walks on
top of these.
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from kms_actors.errors import SerializationException
from kms_actors.wire import _messages as messages
from kms_actors.wire._model import ShapeDef


class Context:
    """The state of one request's walk."""

    __slots__ = ("base64", "dirty", "failures")

    def __init__(self, base64: bool) -> None:
        self.base64 = base64
        self.dirty = False
        self.failures: list[str] = []

    def fail(self, path: str, shown: str | None, rule: str) -> None:
        if len(self.failures) < messages.MAX_FAILURES:
            self.failures.append(messages.failure(path, shown, rule))


# A scalar's type check: returns what its constraints measure (str, byte length or int value).
_Measure = Callable[[Any, Context], Any]


@dataclass(frozen=True, slots=True)
class Scalar:
    """A compiled scalar shape (string, blob, number, boolean or timestamp)."""

    measure: _Measure
    # Whether a measured value meets every constraint; None when the shape has none.
    ok: Callable[[Any], bool] | None
    # Constraints in the order Coral reports them one by one: (holds?, rule).
    constraints: tuple[tuple[Callable[[Any], bool], str], ...]
    # Every rule, in the order Coral lists them for list elements and map keys/values.
    declared: tuple[str, ...]
    # Whether the value may be echoed in a failure (not for blobs or sensitive shapes).
    shown: bool

    def check(self, value: Any, path: str, context: Context) -> None:
        measured = self.measure(value, context)
        if self.ok is not None and not self.ok(measured):
            shown = messages.quoted(str(measured)) if self.shown else None
            for holds, rule in self.constraints:
                if not holds(measured):
                    context.fail(path, shown, rule)


SCALAR_TYPES: Final = frozenset(
    {"string", "blob", "integer", "long", "boolean", "timestamp", "float", "double"}
)
_BASE64_VALUES: Final = {
    character: index
    for index, character in enumerate(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    )
}
# Java regex constructs Python's re lacks or reads differently; none occur in the KMS model.
_UNSUPPORTED_REGEX: Final = re.compile(r"\\[pPQEhHRXGz]|&&|\(\?<[A-Za-z]|\\x\{")


def java_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a model pattern (a Java regex) for ``fullmatch``, as Java's ``matches`` applies it.

    ``re.ASCII`` gives ``\\w``, ``\\d`` and ``\\s`` Java's ASCII meaning; ``\\uXXXX`` escapes
    and anchors mean the same in both.

    Raises:
        ValueError: The pattern uses a Java construct that would not translate faithfully.
    """
    if _UNSUPPORTED_REGEX.search(pattern):
        raise ValueError(f"unsupported Java regex construct in {pattern!r}")
    return re.compile(pattern, re.ASCII)


def decoded_length(text: str, sensitive: bool) -> int:
    """Return the byte length of base64 ``text``, checking it as Coral does.

    Raises:
        SerializationException: ``text`` is not padded, canonical base64.
    """
    size = len(text)
    if size % 4:
        raise SerializationException(messages.base64_length(size))
    try:
        length = len(binascii.a2b_base64(text, strict_mode=True))
    except ValueError:
        raise SerializationException(_base64_diagnosis(text, sensitive)) from None
    if size and text[-1] == "=":
        pads = 2 if text[-2] == "=" else 1
        if _BASE64_VALUES[text[-1 - pads]] & (0b1111 if pads == 2 else 0b11):
            raise SerializationException(messages.BASE64_LAST_CHARACTER)
    return length


def _base64_diagnosis(text: str, sensitive: bool) -> str:
    for index, character in enumerate(text):
        if character == "=":
            if index + 1 < len(text) and text[index + 1] != "=":
                return messages.base64_character(None if sensitive else character)
        elif character not in _BASE64_VALUES:
            return messages.base64_character(None if sensitive else character)
    return messages.BASE64_LAST_CHARACTER


def _measure_string(value: Any, context: Context) -> Any:
    if isinstance(value, str):
        return value
    raise SerializationException(messages.mismatch(value, "string"))


def _measure_integer(value: Any, context: Context) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, float) and math.isfinite(value):
        context.dirty = True  # Coral truncates a JSON fraction where an integer belongs.
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise SerializationException(messages.mismatch(value, "integer"))


def _measure_boolean(value: Any, context: Context) -> Any:
    if isinstance(value, bool):
        return value
    raise SerializationException(messages.mismatch(value, "boolean"))


def _measure_number(value: Any, context: Context) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise SerializationException(messages.mismatch(value, "double"))


def _measure_timestamp(value: Any, context: Context) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if not context.base64 and isinstance(value, datetime):
        context.dirty = True
        return value
    raise SerializationException(messages.mismatch(value, "timestamp"))


def _blob_measure(sensitive: bool) -> _Measure:
    def measure(value: Any, context: Context) -> Any:
        if context.base64:
            if isinstance(value, str):
                return decoded_length(value, sensitive)
        elif isinstance(value, bytes | bytearray):
            return len(value)
        elif isinstance(value, memoryview):
            return value.nbytes
        elif isinstance(value, str):
            context.dirty = True  # boto3 sends a str blob as its UTF-8 bytes.
            return len(value.encode())
        raise SerializationException(messages.mismatch(value, "blob"))

    return measure


_MEASURES: Final[dict[str, _Measure]] = {
    "string": _measure_string,
    "integer": _measure_integer,
    "long": _measure_integer,
    "boolean": _measure_boolean,
    "timestamp": _measure_timestamp,
    "float": _measure_number,
    "double": _measure_number,
}


def compile_scalar(shape: ShapeDef) -> Scalar:
    kind = shape.type
    sized = kind in ("string", "blob")
    at_most = messages.length_at_most if sized else messages.value_at_most
    at_least = messages.length_at_least if sized else messages.value_at_least
    # A string measures as itself (its length is taken here), a blob as its byte length and a
    # number as its value.
    by_length = kind == "string"
    regex = java_pattern(shape.pattern) if shape.pattern is not None else None
    allowed = frozenset(shape.enum) if shape.enum else None
    floor = shape.min if shape.min is not None else -math.inf
    ceiling = shape.max if shape.max is not None else math.inf

    def size(measured: Any) -> Any:
        return len(measured) if by_length else measured

    constraints: list[tuple[Callable[[Any], bool], str]] = []
    declared: list[str] = []
    if shape.max is not None:
        declared.append(at_most(shape.max))
    if shape.min is not None:
        declared.append(at_least(shape.min))
    if regex is not None:
        rule = messages.pattern(regex.pattern)
        constraints.append((lambda text: regex.fullmatch(text) is not None, rule))
        declared.append(rule)
    if shape.min is not None and not (sized and shape.min <= 0):
        constraints.append((lambda measured: size(measured) >= floor, at_least(shape.min)))
    if shape.max is not None:
        constraints.append((lambda measured: size(measured) <= ceiling, at_most(shape.max)))
    if allowed is not None:
        rule = messages.enum(shape.enum)
        constraints.append((lambda text: text in allowed, rule))
        declared.append(rule)

    def ok(measured: Any) -> bool:
        return (
            floor <= size(measured) <= ceiling
            and (regex is None or regex.fullmatch(measured) is not None)
            and (allowed is None or measured in allowed)
        )

    measure = _blob_measure(shape.sensitive) if kind == "blob" else _MEASURES[kind]
    shown = kind != "blob" and not shape.sensitive
    return Scalar(measure, ok if constraints else None, tuple(constraints), tuple(declared), shown)
