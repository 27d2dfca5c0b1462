"""Scalar checks: JSON types, base64, Java patterns and constraints, as AWS applies them.

A scalar shape compiles into a `Scalar`: a *measure* that type-checks a value (raising
``SerializationException`` in AWS's words) and returns what the constraints look at, plus the
constraints themselves. `kms_actors.wire._validate` builds the container and structure walks on
top of these.
"""

from __future__ import annotations

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


# A compiled shape: check(value, path, context), raising SerializationException on bad types.
Check = Callable[[Any, str, Context], None]
# A scalar's type check: returns what its constraints measure (str, byte length or int value).
_Measure = Callable[[Any, Context], Any]
_Holds = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Scalar:
    """A compiled scalar shape (string, blob, number, boolean or timestamp)."""

    # Type-checks a value and returns what the constraints look at.
    measure: _Measure
    # Whether a measured value meets every constraint; None when the shape has none.
    ok: _Holds | None
    # Checks a member value and records its failures, one by one.
    check: Check
    # Every rule, in the order Coral lists them for list elements and map keys/values.
    declared: tuple[str, ...]
    # An unconstrained string: a container of these only needs a type check per item.
    plain_string: bool


SCALAR_TYPES: Final = frozenset(
    {"string", "blob", "integer", "long", "boolean", "timestamp", "float", "double"}
)
_BASE64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BASE64_VALUES: Final = {character: index for index, character in enumerate(_BASE64_ALPHABET)}
_BASE64_BYTES: Final = _BASE64_ALPHABET.encode("ascii")
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

    The text is only scanned, not decoded: ``msgspec.convert`` decodes it afterwards, faster
    than ``binascii`` would here.

    Raises:
        SerializationException: ``text`` is not padded, canonical base64.
    """
    size = len(text)
    if size % 4:
        raise SerializationException(messages.base64_length(size))
    # What is left once the alphabet is deleted must be the padding, at the end.
    rest = text.encode("ascii").translate(None, _BASE64_BYTES) if text.isascii() else None
    if rest is None or len(rest) > 2 or (rest and not text.endswith(rest.decode())):
        raise SerializationException(_base64_diagnosis(text, sensitive))
    pads = len(rest)
    if pads and _BASE64_VALUES[text[-1 - pads]] & (0b1111 if pads == 2 else 0b11):
        raise SerializationException(messages.BASE64_LAST_CHARACTER)
    return size // 4 * 3 - pads


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


def _all(predicates: list[_Holds]) -> _Holds | None:
    if len(predicates) <= 1:
        return predicates[0] if predicates else None
    if len(predicates) == 2:
        first, second = predicates
        return lambda measured: first(measured) and second(measured)
    return lambda measured: all(holds(measured) for holds in predicates)


def _identity(measured: Any) -> Any:
    return measured


@dataclass(frozen=True, slots=True)
class _Rules:
    fast: list[_Holds]  # Together they decide whether a value passes at all.
    reported: list[tuple[_Holds, str]]  # Each failure, in the order Coral reports them.
    declared: list[str]  # Every rule, in the order Coral lists them for elements and entries.


def _rules(shape: ShapeDef) -> _Rules:
    kind = shape.type
    sized = kind in ("string", "blob")
    at_most = messages.length_at_most if sized else messages.value_at_most
    at_least = messages.length_at_least if sized else messages.value_at_least
    # A string measures as itself, a blob as its byte length and a number as its value.
    size: Callable[[Any], Any] = len if kind == "string" else _identity
    rules = _Rules([], [], [])
    rules.declared.extend([at_most(shape.max)] if shape.max is not None else [])
    rules.declared.extend([at_least(shape.min)] if shape.min is not None else [])
    if shape.pattern is not None:
        regex = java_pattern(shape.pattern)
        rules.fast.append(lambda text: regex.fullmatch(text) is not None)
        rules.reported.append((rules.fast[-1], messages.pattern(shape.pattern)))
        rules.declared.append(messages.pattern(shape.pattern))
    floor = shape.min if shape.min is not None and (shape.min > 0 or not sized) else None
    ceiling = shape.max
    if floor is not None or ceiling is not None:
        low = floor if floor is not None else -math.inf
        high = ceiling if ceiling is not None else math.inf
        if kind == "string":
            rules.fast.append(lambda text: low <= len(text) <= high)
        else:
            rules.fast.append(lambda measured: low <= measured <= high)
        if floor is not None:
            rules.reported.append((lambda measured: size(measured) >= low, at_least(floor)))
        if ceiling is not None:
            rules.reported.append((lambda measured: size(measured) <= high, at_most(ceiling)))
    if shape.enum:
        allowed = frozenset(shape.enum)
        rules.fast.append(lambda text: text in allowed)
        rules.reported.append((rules.fast[-1], messages.enum(shape.enum)))
        rules.declared.append(messages.enum(shape.enum))
    return rules


def compile_scalar(shape: ShapeDef) -> Scalar:
    """Compile a scalar shape's type check and constraints.

    Raises:
        ValueError: The shape's pattern would not translate to Python faithfully.
    """
    rules = _rules(shape)
    reported = tuple(rules.reported)
    ok = _all(rules.fast)
    measure = _blob_measure(shape.sensitive) if shape.type == "blob" else _MEASURES[shape.type]
    shown = shape.type != "blob" and not shape.sensitive  # Blobs and secrets are never echoed.

    def check(value: Any, path: str, context: Context) -> None:
        measured = measure(value, context)
        if ok is not None and not ok(measured):
            echoed = messages.quoted(str(measured)) if shown else None
            for holds, rule in reported:
                if not holds(measured):
                    context.fail(path, echoed, rule)

    plain_string = shape.type == "string" and ok is None
    return Scalar(measure, ok, check, tuple(rules.declared), plain_string)
