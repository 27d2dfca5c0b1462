"""Who is calling: the principal every request carries."""

from __future__ import annotations

from typing import Any

import msgspec


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated principal of one request, and where the request is addressed."""

    account_id: str
    region: str
    arn: str
    partition: str = "aws"
    access_key_id: str = ""
    source_ip: str = ""
    user_agent: str = ""
    user_id: str = ""  # the principal's unique id (AIDA..., AROA...:session), for audit
    role_arn: str = ""  # for an assumed-role session: its role's ARN (with the role's path)
    # Compiled IAM identity policies of the principal (kms_actors.domain.policy.Policy).
    identity_policies: tuple[Any, ...] = ()

    @property
    def is_root(self) -> bool:
        """Say whether the caller is its account's root principal."""
        return self.arn.endswith(":root")

    @classmethod
    def root(cls, account_id: str, region: str, partition: str = "aws") -> Caller:
        """Return the account's root principal."""
        return cls(
            account_id=account_id,
            region=region,
            arn=f"arn:{partition}:iam::{account_id}:root",
            partition=partition,
        )
