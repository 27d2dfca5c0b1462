"""Identities: who an access key belongs to, and the store the verifier looks them up in."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from typing import Any, Final

import msgspec
from msgspec.structs import force_setattr

_ARN: Final = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):(?P<service>iam|sts)::(?P<account>\d{12}):"
    r"(?:(?P<root>root)"
    r"|(?P<kind>user|role)/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]+)"
    r"|assumed-role/(?P<role>[\w+=,.@-]+)/(?P<session>[\w+=,.@-]+))"
)
_ACCOUNT: Final = re.compile(r"\d{12}")
_UNIQUE_ID_LENGTH: Final = 21  # AIDA/AROA + 17 characters, as IAM's unique ids


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """A principal that signs requests: its credentials and who it is.

    ``arn`` is one of ``arn:aws:iam::<acct>:root``, ``arn:aws:iam::<acct>:user/<name>``,
    ``arn:aws:iam::<acct>:role/<name>`` (both with an optional IAM path) or
    ``arn:aws:sts::<acct>:assumed-role/<role>/<session>``, in the account ``account_id``.
    ``user_id`` is what STS GetCallerIdentity answers as UserId; when empty it is derived
    from the ARN, stably and in AWS's shape (``AIDA...`` for users, ``AROA...`` for roles,
    ``AROA...:<session>`` for assumed roles, the account id for the root). ``session_token``
    and ``expiration`` (epoch seconds) are set for temporary credentials.

    The repr never shows the secret or the session token.
    """

    access_key_id: str
    secret_access_key: str
    account_id: str
    arn: str
    session_token: str | None = None
    user_id: str = ""
    expiration: float | None = None
    # Compiled IAM identity policies (kms_actors.domain.policy.Policy) attached to this principal.
    policies: tuple[Any, ...] = ()
    role_arn: str = ""  # for an assumed-role session: the role's ARN (with its path)

    def __post_init__(self) -> None:
        if not self.access_key_id:
            raise ValueError("an identity needs an access key id")
        if not _ACCOUNT.fullmatch(self.account_id):
            raise ValueError(f"account id must be 12 digits, not {self.account_id!r}")
        match = _ARN.fullmatch(self.arn)
        if match is None or (match["service"] == "sts") != (match["role"] is not None):
            raise ValueError(f"not a user, role, assumed-role or root ARN: {self.arn!r}")
        if match["account"] != self.account_id:
            raise ValueError(f"ARN {self.arn!r} is not in account {self.account_id}")
        if not self.user_id:
            force_setattr(self, "user_id", _derive_user_id(match))

    def __repr__(self) -> str:
        return (
            f"Identity(access_key_id={self.access_key_id!r}, arn={self.arn!r}, "
            f"user_id={self.user_id!r}, temporary={self.session_token is not None})"
        )


def _derive_user_id(match: re.Match[str]) -> str:
    partition, account = match["partition"], match["account"]
    if match["root"]:
        return account
    if match["kind"] == "user":
        return _unique_id("AIDA", f"{partition}:{account}:user/{match['name']}")
    role = match["name"] if match["kind"] == "role" else match["role"]
    role_id = _unique_id("AROA", f"{partition}:{account}:role/{role}")
    return role_id if match["kind"] == "role" else f"{role_id}:{match['session']}"


def _unique_id(prefix: str, seed: str) -> str:
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()
    return prefix + digest[: _UNIQUE_ID_LENGTH - len(prefix)]


class IdentityStore:
    """The identities allowed to sign requests, by access key id.

    In development mode (``dev_mode=True``) an unknown access key is accepted as a synthetic
    root identity: its account is the access key itself when that is 12 digits, else
    ``default_account_id``. The verifier then checks NO signature, session token, expiry or
    clock for any key, so any secret works: never expose a development-mode server.
    """

    def __init__(
        self,
        identities: Iterable[Identity],
        *,
        dev_mode: bool = False,
        default_account_id: str = "000000000000",
    ) -> None:
        if not _ACCOUNT.fullmatch(default_account_id):
            raise ValueError(f"account id must be 12 digits, not {default_account_id!r}")
        self._by_key: dict[str, Identity] = {}
        self._dev_mode = dev_mode
        self._default_account_id = default_account_id
        for identity in identities:
            if identity.access_key_id in self._by_key:
                raise ValueError(f"duplicate access key id {identity.access_key_id}")
            self._by_key[identity.access_key_id] = identity

    @property
    def dev_mode(self) -> bool:
        """Whether unknown keys are accepted and signatures go unchecked."""
        return self._dev_mode

    def lookup(self, access_key_id: str) -> Identity | None:
        """Return the identity of an access key (a synthetic one in dev mode), or None."""
        found = self._by_key.get(access_key_id)
        if found is not None or not self._dev_mode or not access_key_id:
            return found
        account = access_key_id if _ACCOUNT.fullmatch(access_key_id) else self._default_account_id
        return Identity(
            access_key_id=access_key_id,
            secret_access_key="",
            account_id=account,
            arn=f"arn:aws:iam::{account}:root",
        )

    def add(self, identity: Identity) -> None:
        """Add (or replace) an identity, e.g. temporary credentials issued by AssumeRole."""
        self._by_key[identity.access_key_id] = identity

    def prune_expired(self, now: float) -> int:
        """Forget temporary identities that expired before ``now``; return how many."""
        expired = [
            key
            for key, identity in self._by_key.items()
            if identity.expiration is not None and identity.expiration <= now
        ]
        for key in expired:
            del self._by_key[key]
        return len(expired)

    def __len__(self) -> int:
        return len(self._by_key)
