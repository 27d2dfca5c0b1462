"""What the audit log answers besides lookups: GetKeyLastUsage, and the service's own events.

GetKeyLastUsage is answered from the audit log (``kms_actors.ops.usage``); a scheduled
deletion that comes due leaves an ``AwsServiceEvent`` named DeleteKey.
"""

from __future__ import annotations

import datetime
import json
import pathlib
from typing import Any

import anyio
import pytest

import kms_actors
from kms_actors import FakeClock
from kms_actors.audit import export_and_prune, list_events
from kms_actors.hsm import checkpoint_signer
from kms_actors.service import load_root_key
from tests.audit_e2e.audit_e2e_support import ClientFactory, events

DAY = 86_400.0


def _at(value: datetime.datetime) -> float:
    return value.timestamp()


async def _event(kms: Any, request_id: str) -> dict[str, Any]:
    audit = kms.service.audit
    for record in await list_events(audit.store, limit=1000):
        event: dict[str, Any] = json.loads(record.event_json)
        if event.get("requestID") == request_id:
            return event
    raise AssertionError(f"no event for request {request_id}")


async def _check_last_use(kms: Any, key: dict[str, Any], operation: str, reply: Any) -> None:
    usage = await kms.get_key_last_usage(KeyId=key["KeyId"])
    request_id = reply["ResponseMetadata"]["RequestId"]
    event = await _event(kms, request_id)
    assert usage["KeyId"] == key["Arn"]
    assert usage["KeyLastUsage"] == {
        "Operation": operation,
        "Timestamp": datetime.datetime.fromisoformat(event["eventTime"]),
        "CloudTrailEventId": event["eventID"],
        "KmsRequestId": request_id,
    }


@pytest.mark.anyio
async def test_get_key_last_usage_answers_the_newest_successful_crypto_use(
    tmp_path: pathlib.Path,
) -> None:
    clock = FakeClock()
    async with kms_actors.open_kms(tmp_path / "data", clock=clock) as kms:
        clock.advance(3600)
        key = (await kms.create_key())["KeyMetadata"]
        other = (await kms.create_key())["KeyMetadata"]
        unused = await kms.get_key_last_usage(KeyId=key["KeyId"])
        assert unused["KeyId"] == key["Arn"]
        assert unused["KeyLastUsage"] == {}
        assert unused["KeyCreationDate"] == key["CreationDate"]
        # Tracking started with the audit log, before the key: the key's creation is later.
        assert unused["TrackingStartDate"] == key["CreationDate"]

        clock.advance(60)
        encrypted = await kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
        await _check_last_use(kms, key, "Encrypt", encrypted)
        clock.advance(60)
        decrypted = await kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
        await _check_last_use(kms, key, "Decrypt", decrypted)

        # Neither failures nor non-crypto operations count, nor another key's use.
        await kms.disable_key(KeyId=key["KeyId"])
        with pytest.raises(kms_actors.KmsError):
            await kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
        await kms.enable_key(KeyId=key["KeyId"])
        await kms.describe_key(KeyId=key["KeyId"])
        await kms.generate_data_key(KeyId=other["KeyId"], KeySpec="AES_256")
        await _check_last_use(kms, key, "Decrypt", decrypted)

        # ReEncrypt counts for both keys; an alias names the key.
        clock.advance(60)
        await kms.create_alias(AliasName="alias/usage", TargetKeyId=key["KeyId"])
        moved = await kms.re_encrypt(
            CiphertextBlob=encrypted["CiphertextBlob"], DestinationKeyId="alias/usage"
        )
        await _check_last_use(kms, key, "ReEncrypt", moved)
        by_alias = await kms.get_key_last_usage(KeyId="alias/usage")
        assert by_alias["KeyId"] == key["Arn"]
        assert by_alias["KeyLastUsage"]["Operation"] == "ReEncrypt"

        # Its own event is recorded, read-only, naming the key.
        last = (await list_events(kms.service.audit.store, limit=1))[0]
        assert last.event_name == "GetKeyLastUsage" and last.key_arn == key["Arn"]
        assert json.loads(last.event_json)["readOnly"] is True


@pytest.mark.anyio
async def test_get_key_last_usage_is_authorized_and_stays_in_the_account(
    tmp_path: pathlib.Path,
) -> None:
    async with kms_actors.open_kms(tmp_path / "data") as kms:
        key = (await kms.create_key())["KeyMetadata"]
        nobody = kms.as_caller(arn="arn:aws:iam::111122223333:user/nobody")
        with pytest.raises(kms_actors.KmsError) as denied:
            await nobody.get_key_last_usage(KeyId=key["KeyId"])
        assert denied.value.code == "AccessDeniedException"
        assert "kms:GetKeyLastUsage" in denied.value.message
        stranger = kms.as_caller(account_id="444455556666")
        with pytest.raises(kms_actors.KmsError) as missing:
            await stranger.get_key_last_usage(KeyId=key["Arn"])
        assert missing.value.code == "NotFoundException"
        with pytest.raises(kms_actors.KmsError) as gone:
            await kms.get_key_last_usage(KeyId="alias/missing")
        assert gone.value.code == "NotFoundException"


@pytest.mark.anyio
async def test_after_a_prune_tracking_starts_at_the_cut(tmp_path: pathlib.Path) -> None:
    clock = FakeClock()
    async with kms_actors.open_kms(tmp_path / "data", clock=clock) as kms:
        key = (await kms.create_key())["KeyMetadata"]
        await kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
        clock.advance(DAY)
        cut = clock.now()
        signer = checkpoint_signer(load_root_key(kms.service.settings))
        pruned, _ = await export_and_prune(
            kms.service.audit.store, signer, cut, tmp_path / "old.jsonl", clock=clock
        )
        assert pruned == 2
        usage = await kms.get_key_last_usage(KeyId=key["KeyId"])
        assert usage["KeyLastUsage"] == {}
        assert _at(usage["TrackingStartDate"]) == cut
        assert _at(usage["KeyCreationDate"]) < cut


@pytest.mark.anyio
async def test_get_key_last_usage_sees_its_callers_uses_with_asynchronous_logging(
    tmp_path: pathlib.Path,
) -> None:
    async with kms_actors.open_kms(tmp_path / "data", overrides={"audit.durable": False}) as kms:
        key = (await kms.create_key())["KeyMetadata"]
        for _ in range(20):
            reply = await kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=16)
        usage = await kms.get_key_last_usage(KeyId=key["KeyId"])
        assert usage["KeyLastUsage"]["KmsRequestId"] == reply["ResponseMetadata"]["RequestId"]


def test_get_key_last_usage_over_http(make_client: ClientFactory) -> None:
    kms = make_client()
    key = kms.create_key()["KeyMetadata"]
    assert kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"] == {}
    encrypted = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    usage = kms.get_key_last_usage(KeyId=key["KeyId"])
    assert usage["KeyId"] == key["Arn"]
    assert usage["KeyLastUsage"]["Operation"] == "Encrypt"
    assert usage["KeyLastUsage"]["KmsRequestId"] == encrypted["ResponseMetadata"]["RequestId"]
    assert usage["KeyCreationDate"] == key["CreationDate"]


# --- events of the service itself ----------------------------------------------------------


@pytest.mark.anyio
async def test_a_scheduled_deletion_coming_due_is_an_aws_service_event(
    tmp_path: pathlib.Path,
) -> None:
    clock = FakeClock()
    data_dir = tmp_path / "data"
    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        key = (await kms.create_key())["KeyMetadata"]
        scheduled = await kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
        clock.advance(8 * DAY)
        with anyio.fail_after(10):
            while True:
                try:
                    await kms.describe_key(KeyId=key["KeyId"])
                except kms_actors.KmsError as error:
                    if error.code == "NotFoundException":
                        break
                    raise
                await anyio.sleep(0.01)
            while not await list_events(kms.service.audit.store, event_name="DeleteKey"):
                await anyio.sleep(0.01)
    deleted = [e for e in events(data_dir) if e["eventName"] == "DeleteKey"]
    assert len(deleted) == 1
    event = deleted[0]
    assert event["eventType"] == "AwsServiceEvent"
    assert event["userIdentity"] == {"accountId": "111122223333", "invokedBy": "AWS Internal"}
    assert event["sourceIPAddress"] == "AWS Internal"
    assert event["userAgent"] == "AWS Internal"
    assert event["eventSource"] == "kms.amazonaws.com"
    assert event["awsRegion"] == "us-east-1"
    assert event["requestParameters"] is None and event["responseElements"] is None
    assert event["readOnly"] is False and event["managementEvent"] is True
    assert event["recipientAccountId"] == "111122223333"
    assert event["resources"] == [
        {"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": key["Arn"]}
    ]
    assert "requestID" not in event and "errorCode" not in event
    happened = datetime.datetime.fromisoformat(event["eventTime"])
    assert happened >= scheduled["DeletionDate"].replace(microsecond=0)
