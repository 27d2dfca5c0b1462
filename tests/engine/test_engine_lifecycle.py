"""Key lifecycle: linearizable DisableKey, and deletion scheduled by the (fake) clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from kms_actors import FakeClock, KmsError
from tests.engine.engine_support import (
    DAY,
    error_codes,
    error_of,
    eventually,
    is_gone,
    key_arn,
    new_key,
)


@pytest.mark.anyio
async def test_disable_key_is_linearizable(kms: Any) -> None:
    """No Encrypt that started after DisableKey returned may succeed."""
    key_id = (await new_key(kms))["KeyId"]
    tickets = itertools.count()
    succeeded: list[int] = []
    refused: list[int] = []
    stop = anyio.Event()

    async def encrypt_forever() -> None:
        while not stop.is_set():
            ticket = next(tickets)  # taken before the request starts
            try:
                await kms.encrypt(KeyId=key_id, Plaintext=b"linearizable")
            except KmsError as error:
                assert error.code == "DisabledException", error
                refused.append(ticket)
            else:
                succeeded.append(ticket)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(encrypt_forever)
        with anyio.fail_after(10):
            while len(succeeded) < 300:
                await anyio.sleep(0.001)
        await kms.disable_key(KeyId=key_id)
        disabled_at = next(tickets)  # taken right after DisableKey returned
        with anyio.fail_after(10):
            while sum(1 for t in refused if t > disabled_at) < 300:
                await anyio.sleep(0.001)
        stop.set()

    late = [t for t in succeeded if t > disabled_at]
    assert late == [], f"{len(late)} encrypts admitted after DisableKey returned"
    assert sum(1 for t in succeeded if t < disabled_at) >= 300
    await kms.enable_key(KeyId=key_id)
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"again"))["CiphertextBlob"]
    assert (await kms.decrypt(CiphertextBlob=blob))["Plaintext"] == b"again"


def _date(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@pytest.mark.anyio
async def test_scheduled_deletion_follows_the_clock(kms: Any, clock: FakeClock) -> None:
    metadata = await new_key(kms, Description="doomed", Tags=[{"TagKey": "t", "TagValue": "v"}])
    key_id, arn = metadata["KeyId"], metadata["Arn"]
    keeper = (await new_key(kms, Description="keeper"))["KeyId"]
    await kms.create_alias(AliasName="alias/doomed", TargetKeyId=key_id)
    await kms.create_alias(AliasName="alias/doomed-too", TargetKeyId=key_id)
    await kms.create_alias(AliasName="alias/keeper", TargetKeyId=keeper)
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"old", EncryptionContext={"a": "b"}))[
        "CiphertextBlob"
    ]

    scheduled = await kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    due = _date(clock.now() + 7 * DAY)
    assert scheduled["KeyId"] == arn
    assert scheduled["KeyState"] == "PendingDeletion"
    assert scheduled["PendingWindowInDays"] == 7
    assert scheduled["DeletionDate"] == due
    described = (await kms.describe_key(KeyId=key_id))["KeyMetadata"]
    assert described["KeyState"] == "PendingDeletion"
    assert described["Enabled"] is False
    assert described["DeletionDate"] == due

    error = await error_of(kms.encrypt(KeyId=key_id, Plaintext=b"x"))
    assert error.code == "KMSInvalidStateException"
    assert error.message == f"{arn} is pending deletion."
    error = await error_of(kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"}))
    assert error.code == "KMSInvalidStateException"

    clock.advance(6 * DAY)
    await anyio.sleep(0.05)  # give the scheduler every chance to (wrongly) fire
    described = (await kms.describe_key(KeyId=key_id))["KeyMetadata"]
    assert described["KeyState"] == "PendingDeletion"

    cancelled = await kms.cancel_key_deletion(KeyId=key_id)
    assert cancelled["KeyId"] == arn
    described = (await kms.describe_key(KeyId=key_id))["KeyMetadata"]
    assert described["KeyState"] == "Disabled"
    assert "DeletionDate" not in described
    error = await error_of(kms.encrypt(KeyId=key_id, Plaintext=b"x"))
    assert error.code == "DisabledException"
    error = await error_of(kms.cancel_key_deletion(KeyId=key_id))
    assert error.code == "KMSInvalidStateException"
    await kms.enable_key(KeyId=key_id)
    assert (await kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"}))[
        "Plaintext"
    ] == b"old"

    # The first (cancelled) date passes: nothing happens.
    clock.advance(2 * DAY)
    await anyio.sleep(0.05)
    assert (await kms.describe_key(KeyId=key_id))["KeyMetadata"]["KeyState"] == "Enabled"

    await kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    clock.advance(8 * DAY)
    await eventually(lambda: is_gone(kms, key_id))

    error = await error_of(kms.describe_key(KeyId=key_id))
    assert error.code == "NotFoundException"
    assert error.message == f"Key '{arn}' does not exist"
    calls: list[tuple[str, dict[str, Any]]] = [
        ("encrypt", {"KeyId": key_id, "Plaintext": b"x"}),
        ("encrypt", {"KeyId": "alias/doomed", "Plaintext": b"x"}),
        ("enable_key", {"KeyId": key_id}),
        ("cancel_key_deletion", {"KeyId": key_id}),
        ("list_resource_tags", {"KeyId": key_id}),
    ]
    assert await error_codes(kms, calls) == ["NotFoundException"] * len(calls)
    aliases = (await kms.list_aliases())["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/keeper"]
    error = await error_of(kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"}))
    assert error.code in {"InvalidCiphertextException", "NotFoundException"}
    listed = [k["KeyId"] for k in (await kms.list_keys())["Keys"]]
    assert listed == [keeper]

    store = kms.service.store
    assert await store.keys.get(key_id) is None
    assert await store.materials.for_key(key_id) == []
    assert await store.tags.list(key_id) == []
    assert await store.aliases.get("111122223333", "us-east-1", "alias/doomed") is None
    assert key_id not in kms.service.scheduler.pending()
    # The other key never noticed.
    assert (await kms.describe_key(KeyId="alias/keeper"))["KeyMetadata"]["KeyState"] == "Enabled"


@pytest.mark.anyio
async def test_deletion_window_default_and_bounds(kms: Any, clock: FakeClock) -> None:
    key_id = (await new_key(kms))["KeyId"]
    for days in (6, 31, 0):
        error = await error_of(kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days))
        assert error.code == "ValidationException", days
    assert (await kms.describe_key(KeyId=key_id))["KeyMetadata"]["KeyState"] == "Enabled"

    scheduled = await kms.schedule_key_deletion(KeyId=key_id)
    assert scheduled["PendingWindowInDays"] == 30
    assert scheduled["DeletionDate"] == _date(clock.now() + 30 * DAY)
    error = await error_of(kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7))
    assert error.code == "KMSInvalidStateException"
    # The later call did not move the date.
    described = (await kms.describe_key(KeyId=key_id))["KeyMetadata"]
    assert described["DeletionDate"] == _date(clock.now() + 30 * DAY)

    clock.advance(29 * DAY)
    await anyio.sleep(0.05)
    assert not await is_gone(kms, key_id)
    clock.advance(1 * DAY)
    await eventually(lambda: is_gone(kms, key_id))


@pytest.mark.anyio
async def test_window_bounds_are_inclusive(kms: Any, clock: FakeClock) -> None:
    for days in (7, 30):
        key_id = (await new_key(kms))["KeyId"]
        scheduled = await kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days)
        assert scheduled["DeletionDate"] == _date(clock.now() + days * DAY)


@pytest.mark.anyio
async def test_disabled_key_can_be_scheduled_and_cancelled(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    await kms.disable_key(KeyId=key_id)
    scheduled = await kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert scheduled["KeyState"] == "PendingDeletion"
    for call in (kms.enable_key, kms.disable_key):
        error = await error_of(call(KeyId=key_id))
        assert error.code == "KMSInvalidStateException"
        assert error.message == f"{key_arn(key_id)} is pending deletion."
    await kms.cancel_key_deletion(KeyId=key_id)
    assert (await kms.describe_key(KeyId=key_id))["KeyMetadata"]["KeyState"] == "Disabled"


@pytest.mark.anyio
async def test_enable_and_disable_are_idempotent(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    await kms.enable_key(KeyId=key_id)
    assert (await kms.describe_key(KeyId=key_id))["KeyMetadata"]["Enabled"] is True
    for _ in range(2):
        await kms.disable_key(KeyId=key_id)
        metadata = (await kms.describe_key(KeyId=key_id))["KeyMetadata"]
        assert (metadata["KeyState"], metadata["Enabled"]) == ("Disabled", False)
    for _ in range(2):
        await kms.enable_key(KeyId=key_id)
        metadata = (await kms.describe_key(KeyId=key_id))["KeyMetadata"]
        assert (metadata["KeyState"], metadata["Enabled"]) == ("Enabled", True)


@pytest.mark.anyio
async def test_update_key_description(kms: Any) -> None:
    key_id = (await new_key(kms, Description="before"))["KeyId"]
    await kms.update_key_description(KeyId=key_id, Description="after")
    assert (await kms.describe_key(KeyId=key_id))["KeyMetadata"]["Description"] == "after"
    await kms.update_key_description(KeyId=key_arn(key_id), Description="")
    assert (await kms.describe_key(KeyId=key_id))["KeyMetadata"]["Description"] == ""
    await kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    error = await error_of(kms.update_key_description(KeyId=key_id, Description="late"))
    assert error.code == "KMSInvalidStateException"


@pytest.mark.anyio
async def test_a_sooner_deletion_scheduled_later_fires_first(kms: Any, clock: FakeClock) -> None:
    late = (await new_key(kms))["KeyId"]
    soon = (await new_key(kms))["KeyId"]
    await kms.schedule_key_deletion(KeyId=late, PendingWindowInDays=30)
    await anyio.sleep(0.01)  # the scheduler is now waiting for the 30-day date
    await kms.schedule_key_deletion(KeyId=soon, PendingWindowInDays=7)
    clock.advance(7 * DAY)
    await eventually(lambda: is_gone(kms, soon))
    assert (await kms.describe_key(KeyId=late))["KeyMetadata"]["KeyState"] == "PendingDeletion"
    clock.advance(23 * DAY)
    await eventually(lambda: is_gone(kms, late))
