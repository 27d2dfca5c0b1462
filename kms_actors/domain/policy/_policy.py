"""A compiled policy and its evaluation against one request.

Evaluation is the hot path (the key actor runs it for every request), so it is arranged to do
little: the statements whose Action/NotAction cover an action are found once per action name
and cached, Deny statements come first (any match ends the scan), and each statement tests
its cheapest element first: resource, then principal, then conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, NamedTuple

import msgspec

from kms_actors.domain.policy._conditions import Check, ConditionSpec
from kms_actors.domain.policy._context import CallerIdentity, RequestContext
from kms_actors.domain.policy._match import Matcher
from kms_actors.domain.policy._principals import ACCOUNT, DIRECT, NONE, Principals

PolicyKind = Literal["key", "identity", "trust"]
Effect = Literal["Allow", "Deny", "NotApplicable"]
ResourceCheck = Callable[[RequestContext], bool]

_ACTION_CACHE_LIMIT: Final = 512


class StatementSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One statement in normalised form: what its compiled matchers were built from.

    Action patterns are lowercased (IAM matches actions case-insensitively) and condition
    keys too. ``effective`` is False for a key policy statement that lacks Action/NotAction
    or Resource/NotResource: AWS accepts such a statement but it has no effect.
    """

    index: int
    sid: str | None
    effect: Literal["Allow", "Deny"]
    principal: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    not_principal: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    conditions: tuple[ConditionSpec, ...] = ()
    effective: bool = True


class Assessment(NamedTuple):
    """What one policy says about one request."""

    deny: bool  # a Deny statement matches
    allow: bool  # an Allow statement matches the principal itself (or "*")
    delegates: bool  # an Allow statement matches the principal's account only


class ActionMatcher(NamedTuple):
    """Action or NotAction patterns, lowercased."""

    exact: frozenset[str]
    patterns: tuple[Matcher, ...]

    def covers(self, action: str) -> bool:
        """Say whether ``action`` (lowercased) matches a pattern."""
        return action in self.exact or any(match(action) for match in self.patterns)


class Statement:
    """A compiled statement."""

    __slots__ = ("_actions", "_negate_actions", "checks", "deny", "principals", "resource", "spec")

    def __init__(
        self,
        spec: StatementSpec,
        actions: ActionMatcher,
        *,
        negate_actions: bool,
        resource: ResourceCheck | None,
        principals: tuple[Principals, bool] | None,
        checks: tuple[Check, ...],
    ) -> None:
        self.spec = spec
        self.deny = spec.effect == "Deny"
        self._actions = actions
        self._negate_actions = negate_actions
        self.resource = resource  # None: every resource
        self.principals = principals  # (principals, is NotPrincipal); None: identity policy
        self.checks = checks

    def covers(self, action: str) -> bool:
        """Say whether the statement's Action/NotAction covers ``action`` (lowercased)."""
        return self._actions.covers(action) is not self._negate_actions

    def strength(self, who: CallerIdentity | None) -> int:
        """Return how the caller matches Principal/NotPrincipal (DIRECT without one)."""
        if self.principals is None or who is None:
            return DIRECT
        principals, negated = self.principals
        if negated:
            return NONE if principals.lists_all_of(who) else DIRECT
        return principals.strength(who)

    def holds(self, ctx: RequestContext) -> bool:
        """Say whether the resource and every condition match."""
        if self.resource is not None and not self.resource(ctx):
            return False
        return all(check(ctx) for check in self.checks)


class Policy:
    """A compiled IAM policy: a key policy, an identity policy or a role trust policy.

    Build one with ``compile_policy``. A Policy is immutable apart from an internal cache of
    the statements relevant to each action name, so one instance may be shared by every key
    whose policy text is the same.
    """

    __slots__ = ("_by_action", "_statements", "kind", "statements", "text", "version")

    def __init__(
        self, text: str, kind: PolicyKind, version: str, statements: tuple[Statement, ...]
    ) -> None:
        self.text = text
        self.kind: PolicyKind = kind
        self.version = version
        self.statements = tuple(s.spec for s in statements)
        effective = [s for s in statements if s.spec.effective]
        self._statements = tuple(s for s in effective if s.deny) + tuple(
            s for s in effective if not s.deny
        )
        self._by_action: dict[str, tuple[tuple[Statement, ...], tuple[Statement, ...]]] = {}

    def __repr__(self) -> str:
        return f"Policy(kind={self.kind!r}, statements={len(self.statements)})"

    def evaluate(self, ctx: RequestContext) -> Effect:
        """Return this policy's own verdict on ``ctx``.

        "Deny" when any Deny statement matches; "Allow" when an Allow statement matches the
        principal itself (for an identity policy: any matching Allow); otherwise
        "NotApplicable". An Allow that names only the caller's account is a delegation, not
        an Allow: see ``allows_account_delegation``.
        """
        verdict = self._assess(ctx, complete=False)
        if verdict.deny:
            return "Deny"
        return "Allow" if verdict.allow else "NotApplicable"

    def allows_account_delegation(self, ctx: RequestContext) -> bool:
        """Say whether a matching Allow names the caller's account, trusting its IAM policies.

        The account is named as ``"<account id>"`` or ``arn:aws:iam::<account id>:root``. This
        is "the key policy enables IAM policies" for the caller's account.
        """
        return self._assess(ctx, complete=True).delegates

    def assess(self, ctx: RequestContext) -> Assessment:
        """Return everything this policy says about ``ctx`` (Deny, Allow, delegation)."""
        return self._assess(ctx, complete=True)

    def _assess(self, ctx: RequestContext, *, complete: bool) -> Assessment:
        denies, allows = self._relevant(ctx.action)
        who = None if self.kind == "identity" else ctx.caller
        for statement in denies:
            if statement.strength(who) != NONE and statement.holds(ctx):
                return Assessment(deny=True, allow=False, delegates=False)
        allow = delegates = False
        for statement in allows:
            strength = statement.strength(who)
            if strength == NONE or (strength == ACCOUNT and delegates):
                continue
            if (allow and strength == DIRECT) or not statement.holds(ctx):
                continue
            if strength == DIRECT:
                allow = True
                if not complete:
                    break
            else:
                delegates = True
        return Assessment(deny=False, allow=allow, delegates=delegates)

    def _relevant(self, action: str) -> tuple[tuple[Statement, ...], tuple[Statement, ...]]:
        found = self._by_action.get(action)
        if found is None:
            lowered = action.lower()
            covering = [s for s in self._statements if s.covers(lowered)]
            found = (tuple(s for s in covering if s.deny), tuple(s for s in covering if not s.deny))
            if len(self._by_action) >= _ACTION_CACHE_LIMIT:
                self._by_action.clear()
            self._by_action[action] = found
        return found
