"""Record factories for the store tests (unique ids, realistic field values)."""

from __future__ import annotations

import itertools
import os

from kms_actors.domain.records import AliasRecord, KeyRecord, MaterialRecord, TagRecord

ACCOUNT = "111122223333"
REGION = "eu-west-1"

_counter = itertools.count(1)


def make_key(
    *, account_id: str = ACCOUNT, region: str = REGION, key_manager: str = "CUSTOMER"
) -> KeyRecord:
    """Return a new key record with a unique key id."""
    number = next(_counter)
    key_id = f"00000000-0000-4000-8000-{number:012d}"
    return KeyRecord(
        key_id=key_id,
        account_id=account_id,
        region=region,
        arn=f"arn:aws:kms:{region}:{account_id}:key/{key_id}",
        description=f"key number {number}",
        key_manager=key_manager,
        creation_date=1_700_000_000.0 + number,
        policy='{"Version": "2012-10-17", "Statement": []}',
    )


def make_material(key: KeyRecord, version: int = 1) -> MaterialRecord:
    """Return a material version of the key with random ids and wrapped bytes."""
    return MaterialRecord(
        key_id=key.key_id,
        version=version,
        material_id=os.urandom(16),
        wrapped=os.urandom(60),
        created=key.creation_date + version,
        rotation_type="" if version == 1 else "ON_DEMAND",
    )


def make_tags(key: KeyRecord, **tags: str) -> list[TagRecord]:
    """Return tag records for the key."""
    return [TagRecord(key_id=key.key_id, tag_key=k, tag_value=v) for k, v in tags.items()]


def make_alias(key: KeyRecord, name: str) -> AliasRecord:
    """Return an alias named ``alias/<name>`` targeting the key."""
    return AliasRecord(
        account_id=key.account_id,
        region=key.region,
        alias_name=f"alias/{name}",
        target_key_id=key.key_id,
        creation_date=1_700_000_500.0,
        last_updated_date=1_700_000_500.0,
    )
