"""Typed comparisons behind the condition operators: one test per operator family.

Each builder validates the policy's values once and returns a test ``(ctx, request_value)
-> bool`` that says whether one request value matches any of them, in the operator's
positive sense (``StringNotEquals`` is the negation of the ``StringEquals`` test).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Final

from kms_actors.domain.policy._context import RequestContext
from kms_actors.domain.policy._errors import describe, malformed
from kms_actors.domain.policy._match import Matcher, Template, arn, glob, template

ValueTest = Callable[[RequestContext, object], bool]
Scalar = str | int | float | bool

_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_YEAR_MONTH: Final = re.compile(r"(\d{4})(?:-(\d{2}))?")
_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def as_text(value: Scalar) -> str:
    """Return a policy scalar as IAM reads it in a string context."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _request_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return None


def strings(values: Sequence[Scalar], mode: str, *, variables: bool) -> ValueTest:
    """Build the test of StringEquals (``eq``), ...IgnoreCase (``ieq``) or StringLike."""
    fold = mode == "ieq"
    texts = [as_text(v) for v in values]
    parsed = [template(t, for_glob=mode == "like") if variables else t for t in texts]
    static = [p for p in parsed if isinstance(p, str)]
    dynamic = tuple(p for p in parsed if isinstance(p, Template))
    if mode == "like":
        return _patterns(tuple(glob(p) for p in static), dynamic, glob)
    exact = frozenset(s.casefold() for s in static) if fold else frozenset(static)

    def test(ctx: RequestContext, value: object) -> bool:
        text = _request_text(value)
        if text is None:
            return False
        if fold:
            text = text.casefold()
        if text in exact:
            return True
        for item in dynamic:
            rendered = item.render(ctx, for_glob=False)
            if rendered is not None and (rendered.casefold() if fold else rendered) == text:
                return True
        return False

    return test


def arns(values: Sequence[Scalar], *, variables: bool) -> ValueTest:
    """Build the test of ArnEquals / ArnLike (they behave identically)."""
    parsed = [template(as_text(v), for_glob=True) if variables else as_text(v) for v in values]
    static = tuple(arn(p) for p in parsed if isinstance(p, str))
    return _patterns(static, tuple(p for p in parsed if isinstance(p, Template)), arn)


def _patterns(
    static: tuple[Matcher, ...],
    dynamic: tuple[Template, ...],
    compile_pattern: Callable[[str], Matcher],
) -> ValueTest:
    def test(ctx: RequestContext, value: object) -> bool:
        text = _request_text(value)
        if text is None:
            return False
        for match in static:
            if match(text):
                return True
        for item in dynamic:
            rendered = item.render(ctx, for_glob=True)
            if rendered is not None and compile_pattern(rendered)(text):
                return True
        return False

    return test


def booleans(values: Sequence[Scalar], where: str, *, variables: bool) -> ValueTest:
    """Build the test of Bool: the request value is "true" or "false", case-insensitively."""
    parsed: list[str | Template] = []
    for value in values:
        text = as_text(value)
        item = template(text, for_glob=False) if variables else text
        if isinstance(item, str):
            item = item.lower()
            if item not in ("true", "false"):
                raise malformed(where, f"{describe(value)} is not a boolean (true or false)")
        parsed.append(item)
    static = frozenset(p for p in parsed if isinstance(p, str))
    dynamic = tuple(p for p in parsed if isinstance(p, Template))

    def test(ctx: RequestContext, value: object) -> bool:
        text = _request_text(value)
        if text is None:
            return False
        text = text.lower()
        if text in static:
            return True
        return any((item.render(ctx, for_glob=False) or "").lower() == text for item in dynamic)

    return test


def numbers(values: Sequence[Scalar], where: str, compare: str) -> ValueTest:
    """Build the test of a Numeric operator (``compare``: eq, lt, le, gt, ge)."""
    limits = tuple(_number(v, where) for v in values)
    check = _COMPARE[compare]

    def test(_: RequestContext, value: object) -> bool:
        number = _request_number(value)
        return number is not None and any(check(number, limit) for limit in limits)

    return test


def _number(value: Scalar, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    raise malformed(where, f"{describe(value)} is not a number")


def _request_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def dates(values: Sequence[Scalar], where: str, compare: str) -> ValueTest:
    """Build the test of a Date operator; values are ISO 8601 (W3C) or epoch seconds."""
    limits: list[float] = []
    for value in values:
        moment = None if isinstance(value, bool) else parse_date(value)
        if moment is None:
            raise malformed(where, f"{describe(value)} is not an ISO 8601 date or epoch time")
        limits.append(moment)
    check = _COMPARE[compare]

    def test(_: RequestContext, value: object) -> bool:
        moment = _request_date(value)
        return moment is not None and any(check(moment, limit) for limit in limits)

    return test


def parse_date(value: str | int | float) -> float | None:
    """Return epoch seconds for an ISO 8601 (W3C profile) date or an epoch time, else None."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    partial = _YEAR_MONTH.fullmatch(text)
    try:
        if partial is not None:
            year, month = int(partial[1]), int(partial[2] or 1)
            moment = dt.datetime(year, month, 1, tzinfo=dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _request_date(value: object) -> float | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, bool):
        return None
    if isinstance(value, str | int | float):
        return parse_date(value)
    return None


def binaries(values: Sequence[Scalar], where: str) -> ValueTest:
    """Build the test of BinaryEquals: policy values are base64, compared byte for byte."""
    expected: set[bytes] = set()
    for value in values:
        try:
            expected.add(base64.b64decode(as_text(value), validate=True))
        except (binascii.Error, ValueError):
            raise malformed(where, f"{describe(value)} is not base64-encoded") from None

    def test(_: RequestContext, value: object) -> bool:
        if isinstance(value, str):
            try:
                value = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
        return isinstance(value, bytes) and value in expected

    return test


def addresses(values: Sequence[Scalar], where: str) -> ValueTest:
    """Build the test of IpAddress: CIDR ranges; a bare address means /32 (or /128)."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(as_text(value).strip(), strict=False))
        except ValueError:
            raise malformed(where, f"{describe(value)} is not an IP address or CIDR") from None

    def test(_: RequestContext, value: object) -> bool:
        if not isinstance(value, str):
            return False
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            return False
        return any(address in network for network in networks)

    return test


def nulls(values: Sequence[Scalar], where: str) -> tuple[bool, ...]:
    """Return the Null operator's wishes: True means "the key must be absent"."""
    wishes: list[bool] = []
    for value in values:
        text = as_text(value).lower()
        if text not in ("true", "false"):
            raise malformed(where, f"{describe(value)} is not true or false")
        wishes.append(text == "true")
    return tuple(wishes)
