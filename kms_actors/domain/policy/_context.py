"""The request context a policy is evaluated against, and who the caller is."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Literal, NamedTuple

import msgspec
from msgspec.structs import force_setattr

ConditionValue = str | bool | int | float | dt.datetime | bytes | Sequence[str]
"""One context key's value: a scalar, or a sequence of strings for a multivalued key."""

CallerKind = Literal["root", "user", "role", "session", "service", "other"]

_NAME: Final = r"[\w+=,.@-]+"
_IAM_ARN: Final = re.compile(
    rf"arn:(?P<partition>aws[a-z-]*):(?P<service>iam|sts)::(?P<account>\d{{12}}):"
    rf"(?:(?P<root>root)"
    rf"|(?P<kind>user|role)/(?:{_NAME}/)*(?P<name>{_NAME})"
    rf"|assumed-role/(?P<role>{_NAME})/(?P<session>{_NAME}))"
)
_SERVICE: Final = re.compile(r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?")

# AWS sets kms:CallerAccount for every KMS operation except these (KMS developer guide).
_NO_CALLER_ACCOUNT: Final = frozenset(
    {
        "kms:createkey",
        "kms:generaterandom",
        "kms:listaliases",
        "kms:listkeys",
        "kms:listretirablegrants",
        "kms:retiregrant",
    }
)


class RequestContext(msgspec.Struct, frozen=True, kw_only=True):
    """What one request asks for, as policy evaluation sees it.

    ``principal_arn`` is the caller: ``arn:aws:iam::<acct>:root``, an IAM user or role ARN
    (with its path), ``arn:aws:sts::<acct>:assumed-role/<role>/<session>``, or a service
    principal name such as ``s3.amazonaws.com``. ``role_arn`` optionally names the IAM role
    (with its path) behind an assumed-role session; without it the session matches a role
    principal by account and role name, as the session ARN carries no path.

    ``keys`` maps condition keys to values. Names are case-insensitive, as in IAM (they are
    stored lowercased); a multivalued key (``kms:EncryptionContextKeys``, ``aws:TagKeys``,
    ``kms:GrantOperations``...) takes a sequence of strings. Keys the request does not have
    are simply absent. ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:PrincipalType``,
    ``aws:username`` and ``kms:CallerAccount`` are derived from the principal and the action
    when not given; ``aws:CurrentTime`` and ``aws:EpochTime`` from ``request_time`` (epoch
    seconds) when it is set.
    """

    principal_arn: str
    principal_account: str
    action: str
    resource: str
    keys: Mapping[str, ConditionValue] = msgspec.field(default_factory=dict)
    role_arn: str = ""
    request_time: float | None = None

    def __post_init__(self) -> None:
        keys = self.keys
        if not all(name.islower() for name in keys):
            force_setattr(self, "keys", {name.lower(): value for name, value in keys.items()})

    def lookup(self, name: str) -> ConditionValue | None:
        """Return the value of condition key ``name`` (lowercase), or None when absent."""
        value = self.keys.get(name)
        if value is None:
            derive = _DERIVED.get(name)
            if derive is not None:
                return derive(self)
        return value

    @property
    def caller(self) -> CallerIdentity:
        """The parsed principal."""
        return identify(self.principal_arn, self.principal_account, self.role_arn)


def encryption_context_keys(context: Mapping[str, str] | None) -> dict[str, ConditionValue]:
    """Return the condition keys of a request's encryption context.

    ``kms:EncryptionContext:<key>`` for each pair (the key part, like every condition key
    name, is matched case-insensitively; values keep their case) and
    ``kms:EncryptionContextKeys``, which is absent when the context is empty. Of pairs whose
    keys differ only by case the first wins; AWS advises against such contexts.
    """
    if not context:
        return {}
    keys: dict[str, ConditionValue] = {}
    for name, value in context.items():
        keys.setdefault(f"kms:encryptioncontext:{name.lower()}", value)
    keys["kms:encryptioncontextkeys"] = tuple(context)
    return keys


class CallerIdentity(NamedTuple):
    """A parsed principal: what kind it is and the identities it is made of."""

    kind: CallerKind
    arn: str
    account: str
    partition: str
    name: str = ""  # user name, or role name for a role or session
    role_arn: str = ""  # the role of a session (or the role itself), path included if known
    role_arn_known: bool = False  # role_arn came from the context, so its path is reliable


@functools.lru_cache(maxsize=4096)
def identify(principal_arn: str, principal_account: str, role_arn: str = "") -> CallerIdentity:
    """Parse a principal ARN (cached: a service sees few distinct principals)."""
    match = _IAM_ARN.fullmatch(principal_arn)
    if match is None:
        kind: CallerKind = "service" if _SERVICE.fullmatch(principal_arn) else "other"
        return CallerIdentity(kind, principal_arn, principal_account, "aws")
    partition, account = match["partition"], principal_account or match["account"]
    if match["root"]:
        return CallerIdentity("root", principal_arn, account, partition)
    if match["role"]:
        role = role_arn or f"arn:{partition}:iam::{match['account']}:role/{match['role']}"
        return CallerIdentity(
            "session", principal_arn, account, partition, match["role"], role, bool(role_arn)
        )
    if match["kind"] == "role":
        return CallerIdentity(
            "role", principal_arn, account, partition, match["name"], principal_arn, True
        )
    return CallerIdentity("user", principal_arn, account, partition, match["name"])


def _principal_arn(ctx: RequestContext) -> str | None:
    # For a role session IAM reports the role's ARN, not the session's.
    who = ctx.caller
    if who.kind == "service":
        return None
    return who.role_arn if who.kind == "session" else who.arn


def _principal_account(ctx: RequestContext) -> str | None:
    return ctx.caller.account or None


_PRINCIPAL_TYPES: Final[Mapping[CallerKind, str]] = {
    "root": "Account",
    "user": "User",
    "session": "AssumedRole",
}


def _principal_type(ctx: RequestContext) -> str | None:
    return _PRINCIPAL_TYPES.get(ctx.caller.kind)


def _username(ctx: RequestContext) -> str | None:
    who = ctx.caller
    return who.name if who.kind == "user" else None


def _caller_account(ctx: RequestContext) -> str | None:
    action = ctx.action.lower()
    if not action.startswith("kms:") or action in _NO_CALLER_ACCOUNT:
        return None
    who = ctx.caller
    return who.account if who.kind != "service" and who.account else None


def _current_time(ctx: RequestContext) -> str | None:
    if ctx.request_time is None:
        return None
    moment = dt.datetime.fromtimestamp(ctx.request_time, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch_time(ctx: RequestContext) -> int | None:
    return None if ctx.request_time is None else int(ctx.request_time)


_DERIVED: Final[Mapping[str, Callable[[RequestContext], ConditionValue | None]]] = {
    "aws:principalarn": _principal_arn,
    "aws:principalaccount": _principal_account,
    "aws:principaltype": _principal_type,
    "aws:username": _username,
    "kms:calleraccount": _caller_account,
    "aws:currenttime": _current_time,
    "aws:epochtime": _epoch_time,
}
