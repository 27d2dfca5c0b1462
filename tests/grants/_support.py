"""A small world for the grant tests: principals of two accounts, a key, a fake store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kms_actors.domain.clock import FakeClock
from kms_actors.domain.policy import compile_policy
from kms_actors.domain.principal import Caller
from kms_actors.domain.records import GrantRecord, KeyRecord
from kms_actors.keys.grants import MAX_GRANTS_PER_KEY, GrantBook
from kms_actors.keys.messages import CreateGrant

ACCT = "111122223333"
OTHER = "444455556666"
REGION = "us-east-1"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCT}:key/{KEY_ID}"

ROOT = f"arn:aws:iam::{ACCT}:root"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
BOB = f"arn:aws:iam::{ACCT}:user/dev/bob"
APP_ROLE = f"arn:aws:iam::{ACCT}:role/service/AppRole"  # a role with a path
APP_SESSION = f"arn:aws:sts::{ACCT}:assumed-role/AppRole/i-0abc"  # sessions carry no path
OPS_ROLE = f"arn:aws:iam::{ACCT}:role/Ops"
OPS_SESSION = f"arn:aws:sts::{ACCT}:assumed-role/Ops/jane"
CAROL = f"arn:aws:iam::{OTHER}:user/carol"
OTHER_ROOT = f"arn:aws:iam::{OTHER}:root"


def make_key(**changes: Any) -> KeyRecord:
    """Return the test key (symmetric, enabled) with ``changes``."""
    fields: dict[str, Any] = {
        "key_id": KEY_ID,
        "account_id": ACCT,
        "region": REGION,
        "arn": KEY_ARN,
        "creation_date": 1_600_000_000.0,
    }
    fields.update(changes)
    return KeyRecord(**fields)


KEY = make_key()


def identity(*actions: str, effect: str = "Allow", resource: str = "*") -> str:
    """Return an identity policy's text: ``effect`` ``actions`` on ``resource``."""
    statement = {"Effect": effect, "Action": list(actions), "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def caller(arn: str, *policies: str, role_arn: str = "") -> Caller:
    """Return a caller (its account taken from the ARN) with identity policy texts."""
    return Caller(
        account_id=arn.split(":")[4],
        region=REGION,
        arn=arn,
        role_arn=role_arn,
        identity_policies=tuple(compile_policy(p, kind="identity") for p in policies),
    )


def request(grantee: str, *operations: str, **fields: Any) -> CreateGrant:
    """Return a CreateGrant message."""
    return CreateGrant(grantee_principal=grantee, operations=operations, **fields)


class FakeGrants:
    """The store's grant repository, in memory; ``fail`` makes the next write raise."""

    def __init__(self) -> None:
        self.rows: dict[str, GrantRecord] = {}
        self.fail: Exception | None = None

    def _check(self) -> None:
        if self.fail is not None:
            failure, self.fail = self.fail, None
            raise failure

    async def insert(self, grant: GrantRecord) -> None:
        self._check()
        self.rows[grant.grant_id] = grant

    async def delete(self, key_id: str, grant_id: str) -> None:
        self._check()
        row = self.rows.get(grant_id)
        if row is not None and row.key_id == key_id:
            del self.rows[grant_id]


class FakeStore:
    """A store with only the grants repository."""

    def __init__(self) -> None:
        self.grants = FakeGrants()


def new_book(
    records: Sequence[GrantRecord] = (),
    *,
    key: KeyRecord | None = None,
    store: FakeStore | None = None,
    clock: FakeClock | None = None,
    max_grants: int = MAX_GRANTS_PER_KEY,
) -> GrantBook:
    """Return a GrantBook of the test key on a fake store and clock."""
    return GrantBook(
        key or KEY,
        records,
        store or FakeStore(),
        clock or FakeClock(),
        max_grants=max_grants,
    )
