"""Parse and validate a policy document, and compile it into matchers."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Final

import msgspec

from kms_actors.domain.policy._conditions import Check, ConditionSpec, compile_conditions
from kms_actors.domain.policy._context import RequestContext
from kms_actors.domain.policy._errors import (
    KEY_POLICY_MAX_BYTES,
    describe,
    malformed,
    too_large,
)
from kms_actors.domain.policy._match import Template, arn, glob, template
from kms_actors.domain.policy._policy import (
    ActionMatcher,
    Policy,
    PolicyKind,
    ResourceCheck,
    Statement,
    StatementSpec,
)
from kms_actors.domain.policy._principals import Principals, compile_principals

VERSIONS: Final = ("2012-10-17", "2008-10-17")
_TOP: Final = frozenset({"Version", "Id", "Statement"})
_ELEMENTS: Final = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_ACTION: Final = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9*?_-]+")


def compile_policy(text: str, *, kind: PolicyKind = "key") -> Policy:
    """Parse, validate and compile a policy document.

    ``kind`` selects the rules: a key policy and a role trust policy must say who each
    statement is about (Principal or NotPrincipal), an identity policy must not; a key
    policy is limited to 32 KB. Compiled policies are cached by text, so keys sharing a
    policy share one compiled instance.

    Raises:
        LimitExceededException: A key policy is larger than 32,768 bytes.
        MalformedPolicyDocumentException: The document is not a valid policy; the message
            names the element at fault.
    """
    if kind == "key":
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > KEY_POLICY_MAX_BYTES:
            raise too_large(size)
    return _compile(text, kind)


@functools.lru_cache(maxsize=256)
def _compile(text: str, kind: PolicyKind) -> Policy:
    try:
        document = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise malformed("", f"The policy is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise malformed("", "The policy must be a JSON object")
    unknown = sorted(set(document) - _TOP)
    if unknown:
        raise malformed("", f"Unknown policy element {unknown[0]!r}")
    version = document.get("Version", "2008-10-17")  # IAM's default when Version is absent
    if version not in VERSIONS:
        raise malformed(
            "Version",
            f"{' or '.join(VERSIONS)} expected, not {describe(version)}",
            aws="The policy must contain a valid version string.",
        )
    if "Id" in document and not isinstance(document["Id"], str):
        raise malformed("Id", "must be a string")
    if "Statement" not in document:
        raise malformed("", "The policy must contain a Statement element")
    raw = document["Statement"]
    raw_statements = raw if isinstance(raw, list) else [raw]
    statements: list[Statement] = []
    sids: set[str] = set()
    for index, item in enumerate(raw_statements):
        statement = _statement(item, index, kind, variables=version == "2012-10-17")
        sid = statement.spec.sid
        if sid:
            if sid in sids:
                raise malformed(
                    f"Statement[{index}].Sid",
                    f"{sid!r} repeats",
                    aws="Statement IDs (SID) in a single policy must be unique.",
                )
            sids.add(sid)
        statements.append(statement)
    return Policy(text, kind, version, tuple(statements))


def _statement(raw: object, index: int, kind: PolicyKind, *, variables: bool) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, dict):
        raise malformed(where, f"a statement must be a JSON object, not {describe(raw)}")
    unknown = sorted(set(raw) - _ELEMENTS)
    if unknown:
        raise malformed(where, f"Unknown statement element {unknown[0]!r}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise malformed(f"{where}.Sid", f"must be a string, not {describe(sid)}")
    if sid:
        where = f"{where} (Sid {sid!r})"
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise malformed(f"{where}.Effect", f'must be "Allow" or "Deny", not {describe(effect)}')
    principals, principal_spec = _principal(raw, where, kind)
    actions = _pair(raw, where, "Action", "NotAction", kind)
    resources = _pair(raw, where, "Resource", "NotResource", kind)
    checks: tuple[Check, ...] = ()
    conditions: tuple[ConditionSpec, ...] = ()
    if "Condition" in raw:
        checks, conditions = compile_conditions(
            raw["Condition"], f"{where}.Condition", variables=variables
        )
    action_name, action_values = actions or ("Action", ())
    lowered = tuple(a.lower() for a in action_values)
    resource_name, resource_values = resources or ("Resource", ("*",) if kind == "trust" else ())
    spec = StatementSpec(
        index=index,
        sid=sid,
        effect=effect,
        principal=principal_spec if principals and not principals[1] else None,
        not_principal=principal_spec if principals and principals[1] else None,
        actions=lowered if action_name == "Action" and actions else None,
        not_actions=lowered if action_name == "NotAction" else None,
        resources=resource_values if resource_name == "Resource" and resource_values else None,
        not_resources=resource_values if resource_name == "NotResource" else None,
        conditions=conditions,
        effective=bool(actions) and bool(resource_values),
    )
    return Statement(
        spec,
        _actions(action_values, f"{where}.{action_name}"),
        negate_actions=action_name == "NotAction",
        resource=_resources(
            resource_values,
            negate=resource_name == "NotResource",
            where=f"{where}.{resource_name}",
            kind=kind,
            variables=variables,
        ),
        principals=principals,
        checks=checks,
    )


def _principal(
    raw: dict[str, object], where: str, kind: PolicyKind
) -> tuple[tuple[Principals, bool] | None, tuple[tuple[str, tuple[str, ...]], ...]]:
    has, has_not = "Principal" in raw, "NotPrincipal" in raw
    if kind == "identity":
        if has or has_not:
            raise malformed(where, "", aws="Policy document should not specify a principal.")
        return None, ()
    if has and has_not:
        raise malformed(where, "a statement cannot have both Principal and NotPrincipal")
    if not (has or has_not):
        policy = "key policy" if kind == "key" else "trust policy"
        raise malformed(where, f"a {policy} statement must have a Principal or NotPrincipal")
    name = "Principal" if has else "NotPrincipal"
    compiled = compile_principals(raw[name], f"{where}.{name}")
    return (compiled, has_not), compiled.spec


def _pair(
    raw: dict[str, object], where: str, name: str, negated: str, kind: PolicyKind
) -> tuple[str, tuple[str, ...]] | None:
    if name in raw and negated in raw:
        raise malformed(where, f"a statement cannot have both {name} and {negated}")
    present = name if name in raw else negated if negated in raw else None
    if present is None:
        # AWS accepts a key policy statement without them; the statement has no effect.
        if kind == "key" or (name == "Resource" and kind == "trust"):
            return None
        what = "actions" if name == "Action" else "resources"
        raise malformed(where, "", aws=f"Policy statement must contain {what}.")
    value = raw[present]
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise malformed(
            f"{where}.{present}",
            f"must be a string or a non-empty list of strings, not {describe(value)}",
        )
    return present, tuple(values)


def _actions(patterns: tuple[str, ...], where: str) -> ActionMatcher:
    exact: set[str] = set()
    wild: list[Callable[[str], bool]] = []
    for written in patterns:
        if not _ACTION.fullmatch(written):
            raise malformed(
                where,
                f"{written!r}: actions must be prefaced by a vendor, e.g. kms:Encrypt or kms:*",
            )
        pattern = written.lower()
        if "*" in pattern or "?" in pattern:
            wild.append(glob(pattern))
        else:
            exact.add(pattern)
    return ActionMatcher(frozenset(exact), tuple(wild))


def _resources(
    patterns: tuple[str, ...],
    *,
    negate: bool,
    where: str,
    kind: PolicyKind,
    variables: bool,
) -> ResourceCheck | None:
    for pattern in patterns:
        # Key policies name their own key, so AWS is lenient there; IAM is not.
        if kind == "identity" and pattern != "*" and not pattern.startswith("arn:"):
            raise malformed(where, f'Resource {pattern!r} must be in ARN format or "*".')
    if "*" in patterns and not negate:
        return None
    parsed = [template(p, for_glob=True) if variables else p for p in patterns]
    static = tuple(arn(p) for p in parsed if isinstance(p, str))
    dynamic = tuple(p for p in parsed if isinstance(p, Template))

    def matches(ctx: RequestContext) -> bool:
        resource = ctx.resource
        if any(match(resource) for match in static):
            return True
        for item in dynamic:
            rendered = item.render(ctx, for_glob=True)
            if rendered is not None and arn(rendered)(resource):
                return True
        return False

    if negate:
        return lambda ctx: not matches(ctx)
    return matches
