"""Aliases and tags: CreateAlias, UpdateAlias, DeleteAlias, ListAliases, tag operations."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kms_actors import FakeClock, KmsError
from tests.engine.engine_support import alias_arn, error_of, new_key


async def _alias_names(kms: Any, **params: Any) -> list[str]:
    return [a["AliasName"] for a in (await kms.list_aliases(**params))["Aliases"]]


@pytest.mark.anyio
async def test_alias_lifecycle(kms: Any, clock: FakeClock) -> None:
    one = (await new_key(kms, Description="one"))["KeyId"]
    two = (await new_key(kms, Description="two"))["KeyId"]
    await kms.create_alias(AliasName="alias/app", TargetKeyId=one)
    listed = (await kms.list_aliases())["Aliases"]
    assert len(listed) == 1
    entry = listed[0]
    assert entry["AliasName"] == "alias/app"
    assert entry["AliasArn"] == alias_arn("alias/app")
    assert entry["TargetKeyId"] == one
    assert entry["CreationDate"].timestamp() == clock.now()

    error = await error_of(kms.create_alias(AliasName="alias/app", TargetKeyId=two))
    assert error.code == "AlreadyExistsException"
    assert (await kms.describe_key(KeyId="alias/app"))["KeyMetadata"]["KeyId"] == one

    clock.advance(60)
    await kms.update_alias(AliasName="alias/app", TargetKeyId=two)
    assert (await kms.describe_key(KeyId="alias/app"))["KeyMetadata"]["KeyId"] == two
    moved = (await kms.list_aliases())["Aliases"][0]
    assert moved["TargetKeyId"] == two
    assert moved["LastUpdatedDate"].timestamp() == clock.now()
    blob = (await kms.encrypt(KeyId="alias/app", Plaintext=b"x"))["CiphertextBlob"]
    assert (await kms.decrypt(CiphertextBlob=blob, KeyId=two))["Plaintext"] == b"x"

    await kms.delete_alias(AliasName="alias/app")
    assert await _alias_names(kms) == []
    error = await error_of(kms.describe_key(KeyId="alias/app"))
    assert error.code == "NotFoundException"
    error = await error_of(kms.delete_alias(AliasName="alias/app"))
    assert error.code == "NotFoundException"
    assert error.message == f"Alias {alias_arn('alias/app')} is not found."
    error = await error_of(kms.update_alias(AliasName="alias/app", TargetKeyId=one))
    assert error.code == "NotFoundException"
    # The keys were not touched by deleting their alias.
    assert (await kms.describe_key(KeyId=two))["KeyMetadata"]["KeyState"] == "Enabled"
    # The name is free again.
    await kms.create_alias(AliasName="alias/app", TargetKeyId=one)
    assert (await kms.describe_key(KeyId="alias/app"))["KeyMetadata"]["KeyId"] == one


@pytest.mark.anyio
async def test_alias_errors(kms: Any) -> None:
    key = await new_key(kms)
    key_id = key["KeyId"]
    await kms.create_alias(AliasName="alias/first", TargetKeyId=key_id)
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "reserved": ({"AliasName": "alias/aws/x", "TargetKeyId": key_id}, "NotAuthorizedException"),
        "no prefix": ({"AliasName": "app", "TargetKeyId": key_id}, "ValidationException"),
        "alias target": (
            {"AliasName": "alias/second", "TargetKeyId": "alias/first"},
            "ValidationException",
        ),
        "alias arn target": (
            {"AliasName": "alias/second", "TargetKeyId": alias_arn("alias/first")},
            "ValidationException",
        ),
        "unknown key": (
            {"AliasName": "alias/second", "TargetKeyId": "00000000-0000-4000-8000-000000000000"},
            "NotFoundException",
        ),
        "bad characters": (
            {"AliasName": "alias/a b", "TargetKeyId": key_id},
            "ValidationException",
        ),
    }
    for name, (params, code) in cases.items():
        assert (await error_of(kms.create_alias(**params))).code == code, name
    error = await error_of(kms.update_alias(AliasName="alias/first", TargetKeyId="alias/first"))
    assert error.code == "ValidationException"
    error = await error_of(kms.delete_alias(AliasName="alias/aws/s3"))
    assert error.code == "NotAuthorizedException"
    assert await _alias_names(kms) == ["alias/first"]
    # Key ARN as target works.
    await kms.create_alias(AliasName="alias/by-arn", TargetKeyId=key["Arn"])
    assert await _alias_names(kms) == ["alias/by-arn", "alias/first"]


@pytest.mark.anyio
async def test_alias_to_a_key_pending_deletion_is_refused(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    other = (await new_key(kms))["KeyId"]
    await kms.create_alias(AliasName="alias/other", TargetKeyId=other)
    await kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    error = await error_of(kms.create_alias(AliasName="alias/late", TargetKeyId=key_id))
    assert error.code == "KMSInvalidStateException"
    error = await error_of(kms.update_alias(AliasName="alias/other", TargetKeyId=key_id))
    assert error.code == "KMSInvalidStateException"
    assert (await kms.describe_key(KeyId="alias/other"))["KeyMetadata"]["KeyId"] == other


@pytest.mark.anyio
async def test_list_aliases_filters_and_pages(kms: Any) -> None:
    one = (await new_key(kms))["KeyId"]
    two = (await new_key(kms))["KeyId"]
    names = [f"alias/n{i}" for i in range(7)]
    for i, name in enumerate(names):
        await kms.create_alias(AliasName=name, TargetKeyId=one if i % 2 == 0 else two)
    assert await _alias_names(kms, KeyId=one) == names[0::2]
    assert await _alias_names(kms, KeyId=two) == names[1::2]
    key_arn_of_two = (await kms.describe_key(KeyId=two))["KeyMetadata"]["Arn"]
    assert await _alias_names(kms, KeyId=key_arn_of_two) == names[1::2]
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (await error_of(kms.list_aliases(KeyId=unknown))).code == "NotFoundException"

    seen: list[str] = []
    truncations: list[bool] = []
    params: dict[str, Any] = {"Limit": 3}
    while True:
        page = await kms.list_aliases(**params)
        seen += [a["AliasName"] for a in page["Aliases"]]
        truncations.append(page["Truncated"])
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        params["Marker"] = page["NextMarker"]
    assert seen == names
    assert truncations == [True, True, False]

    filtered: list[str] = []
    params = {"KeyId": one, "Limit": 2}
    while True:
        page = await kms.list_aliases(**params)
        filtered += [a["AliasName"] for a in page["Aliases"]]
        if not page["Truncated"]:
            break
        params["Marker"] = page["NextMarker"]
    assert filtered == names[0::2]
    assert (await error_of(kms.list_aliases(Marker="garbage"))).code == "InvalidMarkerException"


@pytest.mark.anyio
async def test_create_key_refuses_reserved_tags(kms: Any) -> None:
    for tag_key in ("aws:x", "AWS:x"):
        error = await error_of(kms.create_key(Tags=[{"TagKey": tag_key, "TagValue": "y"}]))
        assert error.code == "TagException", tag_key
    assert (await kms.list_keys())["Keys"] == []


@pytest.mark.anyio
async def test_tags(kms: Any) -> None:
    key_id = (
        await new_key(
            kms,
            Tags=[{"TagKey": "team", "TagValue": "blue"}, {"TagKey": "cost", "TagValue": "1"}],
        )
    )["KeyId"]

    async def tags() -> dict[str, str]:
        listed = await kms.list_resource_tags(KeyId=key_id)
        assert listed["Truncated"] is False
        keys = [t["TagKey"] for t in listed["Tags"]]
        assert keys == sorted(keys)
        return {t["TagKey"]: t["TagValue"] for t in listed["Tags"]}

    assert await tags() == {"team": "blue", "cost": "1"}
    await kms.tag_resource(
        KeyId=key_id,
        Tags=[{"TagKey": "team", "TagValue": "red"}, {"TagKey": "env", "TagValue": ""}],
    )
    assert await tags() == {"team": "red", "cost": "1", "env": ""}
    await kms.untag_resource(KeyId=key_id, TagKeys=["cost", "absent"])
    assert await tags() == {"team": "red", "env": ""}

    for tag_key in ("aws:owner", "AWS:owner"):
        error = await error_of(
            kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": tag_key, "TagValue": "x"}])
        )
        assert error.code == "TagException", tag_key
    assert await tags() == {"team": "red", "env": ""}

    many = [{"TagKey": f"k{i:02}", "TagValue": str(i)} for i in range(48)]
    await kms.tag_resource(KeyId=key_id, Tags=many)
    error = await error_of(
        kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "one-too-many", "TagValue": ""}])
    )
    assert error.code == "TagException"
    assert len(await tags()) == 50

    paged: list[str] = []
    params: dict[str, Any] = {"KeyId": key_id, "Limit": 20}
    while True:
        page = await kms.list_resource_tags(**params)
        paged += [t["TagKey"] for t in page["Tags"]]
        if not page["Truncated"]:
            break
        params["Marker"] = page["NextMarker"]
    assert paged == sorted(await tags())


@pytest.mark.anyio
async def test_concurrent_create_alias_has_one_winner(kms: Any) -> None:
    keys = [(await new_key(kms))["KeyId"] for _ in range(5)]
    outcomes: dict[str, str] = {}

    async def create(key_id: str) -> None:
        try:
            await kms.create_alias(AliasName="alias/race", TargetKeyId=key_id)
        except KmsError as error:
            outcomes[key_id] = error.code
        else:
            outcomes[key_id] = "created"

    async with anyio.create_task_group() as tg:
        for key_id in keys:
            tg.start_soon(create, key_id)
    winners = [k for k, outcome in outcomes.items() if outcome == "created"]
    assert len(winners) == 1
    assert sorted(outcomes.values()) == ["AlreadyExistsException"] * 4 + ["created"]
    assert (await kms.describe_key(KeyId="alias/race"))["KeyMetadata"]["KeyId"] == winners[0]


@pytest.mark.anyio
async def test_aws_managed_keys_are_per_account_and_region(kms: Any) -> None:
    mine = (await kms.describe_key(KeyId="alias/aws/s3"))["KeyMetadata"]
    elsewhere = [
        (await kms.as_caller(**where).describe_key(KeyId="alias/aws/s3"))["KeyMetadata"]
        for where in ({"account_id": "444455556666"}, {"region": "eu-west-1"})
    ]
    assert len({mine["KeyId"], *(m["KeyId"] for m in elsewhere)}) == 3
    assert [m["KeyManager"] for m in elsewhere] == ["AWS", "AWS"]
    assert (await kms.describe_key(KeyId="alias/aws/s3"))["KeyMetadata"] == mine
    error = await error_of(kms.describe_key(KeyId="alias/aws/not-a-service"))
    assert error.code == "NotFoundException"
    for method in (kms.disable_key, kms.schedule_key_deletion):
        error = await error_of(method(KeyId="alias/aws/s3"))
        assert error.code in {"AccessDeniedException", "UnsupportedOperationException"}
    assert (await kms.describe_key(KeyId="alias/aws/s3"))["KeyMetadata"]["KeyState"] == "Enabled"
    blob = (await kms.encrypt(KeyId="alias/aws/s3", Plaintext=b"managed"))["CiphertextBlob"]
    assert (await kms.decrypt(CiphertextBlob=blob))["Plaintext"] == b"managed"
