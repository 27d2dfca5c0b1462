"""The Condition element: operators, set qualifiers and IAM's missing-key rules.

A condition block compiles to a tuple of checks that must all hold. Within one operator the
keys are ANDed; within one key the policy values are ORed (NORed for a negated operator).
For a key absent from the request (or an empty multivalued key):

* ``...IfExists`` is true; ``Null`` tests presence itself;
* ``ForAllValues:`` is true and ``ForAnyValue:`` is false;
* otherwise a negated operator (``StringNotEquals``, ``NotIpAddress``...) is true and a
  positive one false.

A present key's values are tested one by one: without a qualifier the operator holds when any
value matches (a negated one when none does); ``ForAnyValue:`` holds when some value satisfies
the operator, ``ForAllValues:`` when every value does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Final, NamedTuple

from kms_actors.domain.policy import _values
from kms_actors.domain.policy._context import ConditionValue, RequestContext
from kms_actors.domain.policy._errors import describe, malformed
from kms_actors.domain.policy._values import Scalar, ValueTest, as_text

Check = Callable[[RequestContext], bool]

_KEY: Final = re.compile(r"[A-Za-z0-9-]+:\S.*", re.DOTALL)
_SCALARS: Final = (str, bytes, bool, int, float, dt.datetime)


class _Operator(NamedTuple):
    name: str  # canonical spelling
    family: str  # string, arn, numeric, date, bool, binary, ip, null
    mode: str  # eq / ieq / like for strings; eq / lt / le / gt / ge for numbers and dates
    negated: bool


def _table() -> dict[str, _Operator]:
    table = [
        _Operator("StringEquals", "string", "eq", False),
        _Operator("StringNotEquals", "string", "eq", True),
        _Operator("StringEqualsIgnoreCase", "string", "ieq", False),
        _Operator("StringNotEqualsIgnoreCase", "string", "ieq", True),
        _Operator("StringLike", "string", "like", False),
        _Operator("StringNotLike", "string", "like", True),
        _Operator("Bool", "bool", "eq", False),
        _Operator("BinaryEquals", "binary", "eq", False),
        _Operator("IpAddress", "ip", "eq", False),
        _Operator("NotIpAddress", "ip", "eq", True),
        _Operator("ArnEquals", "arn", "like", False),
        _Operator("ArnLike", "arn", "like", False),
        _Operator("ArnNotEquals", "arn", "like", True),
        _Operator("ArnNotLike", "arn", "like", True),
        _Operator("Null", "null", "eq", False),
    ]
    for family, prefix in (("numeric", "Numeric"), ("date", "Date")):
        table.append(_Operator(f"{prefix}Equals", family, "eq", False))
        table.append(_Operator(f"{prefix}NotEquals", family, "eq", True))
        for mode, suffix in (("lt", "LessThan"), ("le", "LessThanEquals")):
            table.append(_Operator(prefix + suffix, family, mode, False))
        for mode, suffix in (("gt", "GreaterThan"), ("ge", "GreaterThanEquals")):
            table.append(_Operator(prefix + suffix, family, mode, False))
    return {op.name.lower(): op for op in table}


_OPERATORS: Final = _table()


class ConditionSpec(NamedTuple):
    """One compiled (operator, key, values) triple, in normalised form."""

    operator: str  # canonical, e.g. "ForAnyValue:StringEqualsIfExists"
    key: str  # lowercased
    values: tuple[str, ...]


def compile_conditions(
    block: object, where: str, *, variables: bool
) -> tuple[tuple[Check, ...], tuple[ConditionSpec, ...]]:
    """Compile a Condition element into checks that must all hold.

    Raises:
        MalformedPolicyDocumentException: An unknown operator, a badly formed key or a value
            of the wrong type for its operator.
    """
    if not isinstance(block, dict):
        raise malformed(where, "Condition must be a JSON object of operators")
    checks: list[Check] = []
    specs: list[ConditionSpec] = []
    for operator_name, keys in block.items():
        here = f"{where}[{operator_name!r}]"
        set_op, operator, if_exists = _parse_operator(operator_name, here)
        if not isinstance(keys, dict) or not keys:
            raise malformed(here, "an operator must map condition keys to values")
        canonical = f"{set_op}:" if set_op else ""
        canonical += operator.name + ("IfExists" if if_exists else "")
        for key, raw in keys.items():
            at = f"{here}[{key!r}]"
            if not _KEY.fullmatch(key):
                raise malformed(at, "condition keys must be prefaced by a vendor, e.g. kms:")
            values = _scalars(raw, at)
            lowered = key.lower()
            checks.append(_check(lowered, operator, set_op, if_exists, values, at, variables))
            specs.append(ConditionSpec(canonical, lowered, tuple(as_text(v) for v in values)))
    return tuple(checks), tuple(specs)


def _parse_operator(name: str, where: str) -> tuple[str, _Operator, bool]:
    rest, set_op = name, ""
    qualifier, colon, tail = name.partition(":")
    if colon:
        set_op = {"forallvalues": "ForAllValues", "foranyvalue": "ForAnyValue"}.get(
            qualifier.lower(), ""
        )
        if not set_op:
            raise malformed(where, f"unknown condition set operator {qualifier!r}")
        rest = tail
    lowered = rest.lower()
    if_exists = lowered.endswith("ifexists") and lowered not in _OPERATORS
    operator = _OPERATORS.get(lowered[: -len("ifexists")] if if_exists else lowered)
    if operator is None:
        raise malformed(where, f"unknown condition operator {rest!r}")
    if operator.family == "null" and (if_exists or set_op):
        raise malformed(where, "Null takes neither IfExists nor a set operator")
    return set_op, operator, if_exists


def _scalars(raw: object, where: str) -> list[Scalar]:
    items: list[object] = raw if isinstance(raw, list) else [raw]
    if not items:
        raise malformed(where, "a condition key needs at least one value")
    scalars: list[Scalar] = []
    for item in items:
        if not isinstance(item, str | int | float | bool):
            raise malformed(where, f"{describe(item)} is not a string, number or boolean")
        scalars.append(item)
    return scalars


def _check(
    key: str,
    operator: _Operator,
    set_op: str,
    if_exists: bool,
    values: list[Scalar],
    where: str,
    variables: bool,
) -> Check:
    if operator.family == "null":
        wishes = _values.nulls(values, where)

        def null_check(ctx: RequestContext) -> bool:
            absent = _present(ctx.lookup(key)) is None
            return any(wish is absent for wish in wishes)

        return null_check
    test = _value_test(operator, values, where, variables)
    negated = operator.negated
    missing = True if if_exists else (set_op == "ForAllValues" if set_op else negated)
    if set_op == "ForAllValues":

        def for_all(ctx: RequestContext) -> bool:
            present = _present(ctx.lookup(key))
            if present is None:
                return missing
            return all(test(ctx, value) is not negated for value in present)

        return for_all
    if set_op == "ForAnyValue":

        def for_any(ctx: RequestContext) -> bool:
            present = _present(ctx.lookup(key))
            if present is None:
                return missing
            return any(test(ctx, value) is not negated for value in present)

        return for_any

    def plain(ctx: RequestContext) -> bool:
        present = _present(ctx.lookup(key))
        if present is None:
            return missing
        for value in present:
            if test(ctx, value):
                return not negated
        return negated

    return plain


def _value_test(
    operator: _Operator, values: list[Scalar], where: str, variables: bool
) -> ValueTest:
    family = operator.family
    if family == "string":
        return _values.strings(values, operator.mode, variables=variables)
    if family == "arn":
        return _values.arns(values, variables=variables)
    if family == "bool":
        return _values.booleans(values, where, variables=variables)
    if family == "numeric":
        return _values.numbers(values, where, operator.mode)
    if family == "date":
        return _values.dates(values, where, operator.mode)
    if family == "binary":
        return _values.binaries(values, where)
    return _values.addresses(values, where)


def _present(value: ConditionValue | None) -> tuple[object, ...] | None:
    """Return a key's values, or None when it is absent or an empty multivalued key."""
    if value is None:
        return None
    if isinstance(value, _SCALARS):
        return (value,)
    values = tuple(value)
    return values or None
