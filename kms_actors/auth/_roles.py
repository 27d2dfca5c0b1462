"""IAM roles and sts:AssumeRole: who may assume a role, and the session credentials it gets.

A role's trust policy plays the part of the resource policy, as in IAM: a trust policy that
names the caller allows it directly; one that names the caller's account delegates to the
caller's identity policies, which must then allow ``sts:AssumeRole`` on the role's ARN; an
explicit Deny in either wins. A session is an ``Identity`` added to the ``RoleStore`` the
verifier looks keys up in, carrying the role's policies until it expires.
"""

from __future__ import annotations

import base64
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Final

import msgspec
from msgspec.structs import force_setattr

from kms_actors.auth._identity import Identity, IdentityStore, _unique_id
from kms_actors.domain.policy import ConditionValue, Policy, RequestContext, decide

ACTION: Final = "sts:AssumeRole"
DEFAULT_SESSION_SECONDS: Final = 3600
CHAINED_SESSION_SECONDS: Final = 3600  # a session assuming a role gets at most one hour
# Expired sessions are kept this long, so their callers hear ExpiredToken (as AWS, which can
# always tell from the token) rather than that the key is unknown; then they are forgotten.
EXPIRED_KEPT_SECONDS: Final = 3600.0
_ROLE_ARN: Final = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*"
    r"(?P<name>[\w+=,.@-]{1,64})",
    re.ASCII,
)
_SESSION_TOKEN_BYTES: Final = 96  # 128 base64 characters; AWS's tokens are longer still


class AssumeRoleError(Exception):
    """AssumeRole refused, in STS's terms: ``code``, ``message`` and HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class Role(msgspec.Struct, frozen=True, kw_only=True):
    """An IAM role: its ARN (with its path), trust policy and the policies of its sessions.

    ``account_id``, ``name`` (without the path) and ``role_id`` (``AROA...``, stable, as
    ``Identity`` derives it for the role's ARN) are derived from ``arn``.
    """

    arn: str
    trust_policy: Policy
    policies: tuple[Policy, ...] = ()
    max_session_seconds: int = DEFAULT_SESSION_SECONDS
    account_id: str = ""
    name: str = ""
    role_id: str = ""
    partition: str = ""

    def __post_init__(self) -> None:
        match = _ROLE_ARN.fullmatch(self.arn)
        if match is None:
            raise ValueError(f"not a role ARN: {self.arn!r}")
        if self.trust_policy.kind != "trust":
            raise ValueError(f"a trust policy is needed, not a {self.trust_policy.kind} policy")
        partition, account, name = match["partition"], match["account"], match["name"]
        force_setattr(self, "partition", partition)
        force_setattr(self, "account_id", account)
        force_setattr(self, "name", name)
        force_setattr(self, "role_id", _unique_id("AROA", f"{partition}:{account}:role/{name}"))


class AssumeRole(msgspec.Struct, frozen=True, kw_only=True):
    """A validated AssumeRole request (syntax checked by the caller, e.g. the STS endpoint)."""

    role_arn: str
    session_name: str
    duration_seconds: int | None = None
    external_id: str | None = None
    source_identity: str | None = None
    min_token_size: int = 0


class RoleStore(IdentityStore):
    """An ``IdentityStore`` that also holds the IAM roles its principals may assume.

    ``assume_role`` adds each session it issues to the store, so the verifier accepts the
    session's keys (with its token, until it expires) at once.
    """

    def __init__(
        self,
        identities: Iterable[Identity],
        *,
        roles: Iterable[Role] = (),
        dev_mode: bool = False,
        default_account_id: str = "000000000000",
    ) -> None:
        super().__init__(identities, dev_mode=dev_mode, default_account_id=default_account_id)
        self._roles: dict[str, Role] = {}
        for role in roles:
            if role.arn in self._roles:
                raise ValueError(f"duplicate role {role.arn}")
            self._roles[role.arn] = role

    @property
    def roles(self) -> Mapping[str, Role]:
        """The roles by ARN."""
        return self._roles

    def assume_role(
        self, caller: Identity, request: AssumeRole, *, now: float, source_ip: str = ""
    ) -> Identity:
        """Issue a session of ``request.role_arn`` to ``caller``, if its trust policy allows.

        Sessions that expired over ``EXPIRED_KEPT_SECONDS`` ago are forgotten first, so the
        store does not grow without bound.

        Raises:
            AssumeRoleError: ``AccessDenied`` (403) when the role does not exist, the caller
                is an account root, or the trust and identity policies do not allow it;
                ``ValidationError`` when the duration exceeds what the role allows.
        """
        self.prune_expired(now - EXPIRED_KEPT_SECONDS)
        if caller.arn.endswith(":root") and not self.dev_mode:
            raise AssumeRoleError("AccessDenied", "Roles may not be assumed by root accounts.", 403)
        role = self._roles.get(request.role_arn)
        if role is None or not _trusts(role, caller, request, now, source_ip):
            raise AssumeRoleError(
                "AccessDenied",
                f"User: {caller.arn} is not authorized to perform: {ACTION} "
                f"on resource: {request.role_arn}",
                403,
            )
        seconds = _duration(role, caller, request.duration_seconds)
        session = Identity(
            access_key_id=self._new_access_key_id(),
            secret_access_key=base64.b64encode(secrets.token_bytes(30)).decode(),
            account_id=role.account_id,
            arn=(
                f"arn:{role.partition}:sts::{role.account_id}:assumed-role/"
                f"{role.name}/{request.session_name}"
            ),
            session_token=_session_token(request.min_token_size),
            user_id=f"{role.role_id}:{request.session_name}",
            # Whole seconds, as the answer states it: the session ends when it says it does.
            expiration=float(math.floor(now + seconds)),
            policies=role.policies,
            role_arn=role.arn,
        )
        self.add(session)
        return session

    def _new_access_key_id(self) -> str:
        while True:  # 80 random bits: a clash is all but impossible, but must not replace
            key = "ASIA" + base64.b32encode(secrets.token_bytes(10)).decode()
            if key not in self._by_key:
                return key


def _trusts(role: Role, caller: Identity, request: AssumeRole, now: float, ip: str) -> bool:
    keys: dict[str, ConditionValue] = {
        "sts:RoleSessionName": request.session_name,
        "aws:userid": caller.user_id,
    }
    if request.external_id is not None:
        keys["sts:ExternalId"] = request.external_id
    if request.source_identity is not None:
        keys["sts:SourceIdentity"] = request.source_identity
    if ip:
        keys["aws:SourceIp"] = ip
    ctx = RequestContext(
        principal_arn=caller.arn,
        principal_account=caller.account_id,
        action=ACTION,
        resource=role.arn,
        keys=keys,
        role_arn=caller.role_arn,
        request_time=now,
    )
    return decide(ctx, role.trust_policy, caller.policies).allowed


def _duration(role: Role, caller: Identity, requested: int | None) -> int:
    seconds = min(DEFAULT_SESSION_SECONDS, role.max_session_seconds)
    if requested is None:
        return seconds
    if requested > role.max_session_seconds:
        raise AssumeRoleError(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )
    if ":assumed-role/" in caller.arn and requested > CHAINED_SESSION_SECONDS:
        raise AssumeRoleError(
            "ValidationError",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles "
            "assumed by role chaining.",
        )
    return requested


def _session_token(min_size: int) -> str:
    size = max(_SESSION_TOKEN_BYTES, math.ceil(min_size * 3 / 4))
    return base64.b64encode(secrets.token_bytes(size)).decode()
