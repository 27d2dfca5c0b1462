"""The Principal and NotPrincipal elements: who a statement is about.

An AWS account (``"111122223333"`` or ``arn:aws:iam::111122223333:root``) names the account:
it matches every principal of the account, but for an Allow only as a *delegation* (identity
policies must then allow too), except for the account's root user, which it names directly.
A role ARN also matches the role's assumed-role sessions. ``*`` matches everyone.

NotPrincipal spares a caller only when every identity it is made of is listed: the account,
then for a session the role, then the user, role or session itself. This is AWS's documented
advice (list the account and the role next to a session), applied strictly.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from kms_actors.domain.policy._context import CallerIdentity
from kms_actors.domain.policy._errors import describe, invalid_principal

NONE: Final = 0
ACCOUNT: Final = 1  # matched only as a member of a named account
DIRECT: Final = 2  # matched as itself (or by "*")

_NAME: Final = r"[\w+=,.@-]+"
_ACCOUNT_ID: Final = re.compile(r"\d{12}")
_AWS_ARN: Final = re.compile(
    rf"arn:aws[a-z-]*:(?:iam::(?P<account>\d{{12}}):(?:(?P<root>root)"
    rf"|(?P<kind>user|role)/(?:{_NAME}/)*(?P<name>{_NAME}))"
    rf"|sts::\d{{12}}:assumed-role/{_NAME}/{_NAME})"
)
_SERVICE: Final = re.compile(r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?")
_TYPES: Final = ("AWS", "Service", "Federated", "CanonicalUser")


class Principals(NamedTuple):
    """A compiled Principal or NotPrincipal element."""

    wildcard: bool
    accounts: frozenset[str]
    arns: frozenset[str]  # user, role and session ARNs, exactly as written
    roles: frozenset[tuple[str, str]]  # (account, role name), to match sessions
    services: frozenset[str]
    spec: tuple[tuple[str, tuple[str, ...]], ...]  # normalised form, for inspection

    def strength(self, who: CallerIdentity) -> int:
        """Return how the caller matches: NONE, ACCOUNT (delegation) or DIRECT."""
        if self.wildcard:
            return DIRECT
        if who.kind == "service":
            return DIRECT if who.arn in self.services else NONE
        if who.arn in self.arns or (who.kind == "session" and self._names_role(who)):
            return DIRECT
        if who.account in self.accounts:
            return DIRECT if who.kind == "root" else ACCOUNT
        return NONE

    def lists_all_of(self, who: CallerIdentity) -> bool:
        """Say whether every identity the caller is made of is listed (NotPrincipal)."""
        if self.wildcard:
            return True
        if who.kind == "service":
            return who.arn in self.services
        if who.account not in self.accounts:
            return False
        if who.kind == "root":
            return True
        if who.kind == "session" and not self._names_role(who):
            return False
        return who.arn in self.arns

    def _names_role(self, who: CallerIdentity) -> bool:
        if who.role_arn_known:
            return who.role_arn in self.arns
        return (who.account, who.name) in self.roles


def compile_principals(value: object, where: str) -> Principals:
    """Compile a Principal or NotPrincipal element.

    Raises:
        MalformedPolicyDocumentException: The element is not ``"*"`` or an object of principal
            types, or names a principal in a form AWS does not accept.
    """
    if value == "*":
        return Principals(True, frozenset(), frozenset(), frozenset(), frozenset(), (("*", ()),))
    if not isinstance(value, dict) or not value:
        raise invalid_principal(
            where,
            f'Expected "*" or an object such as {{"AWS": ...}}, not {describe(value)}',
        )
    wildcard = False
    accounts: set[str] = set()
    arns: set[str] = set()
    roles: set[tuple[str, str]] = set()
    services: set[str] = set()
    spec: list[tuple[str, tuple[str, ...]]] = []
    for kind, raw in value.items():
        here = f"{where}.{kind}"
        if kind not in _TYPES:
            raise invalid_principal(here, f"Unknown principal type {kind!r}.")
        names = _names(raw, here)
        spec.append((kind, tuple(names)))
        for name in names:
            if kind == "AWS":
                wildcard |= _add_aws(name, here, accounts, arns, roles)
            elif kind == "Service":
                if not _SERVICE.fullmatch(name):
                    raise invalid_principal(
                        here,
                        f"{name!r} is not a service principal such as s3.amazonaws.com.",
                    )
                services.add(name)
            # Federated and CanonicalUser principals parse but match no caller of this service.
    return Principals(
        wildcard,
        frozenset(accounts),
        frozenset(arns),
        frozenset(roles),
        frozenset(services),
        tuple(sorted(spec)),
    )


def _names(raw: object, where: str) -> list[str]:
    items: list[object] = raw if isinstance(raw, list) else [raw]
    names = [n for n in items if isinstance(n, str) and n]
    if not names or len(names) != len(items):
        raise invalid_principal(
            where,
            f"Expected a string or a non-empty list of strings, not {describe(raw)}.",
        )
    return names


def _add_aws(
    name: str, where: str, accounts: set[str], arns: set[str], roles: set[tuple[str, str]]
) -> bool:
    if name == "*":
        return True
    if _ACCOUNT_ID.fullmatch(name):
        accounts.add(name)
        return False
    match = _AWS_ARN.fullmatch(name)
    if match is None:
        raise invalid_principal(
            where,
            f"{name!r} is not an account id, an "
            "account root ARN, an IAM user or role ARN, an assumed-role session "
            'ARN or "*" (wildcards are not allowed inside principals).',
        )
    if match["root"]:
        accounts.add(match["account"])
    else:
        arns.add(name)
        if match["kind"] == "role":
            roles.add((match["account"], match["name"]))
    return False
