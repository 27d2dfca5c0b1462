"""Events encode to CloudTrail's record JSON for KMS."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest

from kms_actors.audit import (
    READ_ONLY_OPERATIONS,
    AuditEvent,
    api_call_event,
    capture_call,
    capture_read_only,
    decode_event,
    encode_event,
    format_event_time,
    service_event,
)
from kms_actors.audit._event import parse_event_time
from kms_actors.errors import DisabledException
from kms_actors.ops._deferred import FUSED_OPERATIONS

from .audit_support import ACCOUNT, ALICE, KEY_ARN, KEY_ID, REGION, START, caller, event

# The top-level members of AWS's Encrypt log entry, in its order (without additionalEventData,
# tlsDetails and sessionCredentialFromConsole, which this service does not produce).
CLOUDTRAIL_ORDER = [
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
]


def as_json(audit_event: AuditEvent) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(encode_event(audit_event))
    return decoded


def test_encrypt_event_has_cloudtrail_names_values_and_order() -> None:
    record = as_json(
        event(params={"KeyId": KEY_ID, "Plaintext": b"secret", "EncryptionContext": {"a": "b"}})
    )
    assert list(record) == CLOUDTRAIL_ORDER
    assert record["eventVersion"] == "1.08"
    assert record["userIdentity"] == {
        "type": "IAMUser",
        "arn": ALICE,
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAALICE",
        "userName": "Alice",
    }
    assert record["eventTime"] == "2027-01-15T08:00:00Z"
    assert record["eventSource"] == "kms.amazonaws.com"
    assert record["eventName"] == "Encrypt"
    assert record["awsRegion"] == REGION
    assert record["sourceIPAddress"] == "192.0.2.0"
    assert record["requestParameters"] == {"keyId": KEY_ID, "encryptionContext": {"a": "b"}}
    assert record["responseElements"] is None
    assert record["requestID"] == "request-0"
    assert record["readOnly"] is True
    assert record["resources"] == [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": KEY_ARN}]
    assert record["eventType"] == "AwsApiCall"
    assert record["managementEvent"] is True
    assert record["recipientAccountId"] == ACCOUNT
    assert record["eventCategory"] == "Management"


def test_event_ids_are_fresh_and_uuid4_shaped() -> None:
    ids = [as_json(event())["eventID"] for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    for event_id in ids[:3]:
        parsed = uuid.UUID(event_id)
        assert str(parsed) == event_id
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert ids == sorted(ids)  # issued in order: the event id index only appends


def test_error_code_and_message_only_when_the_request_failed() -> None:
    assert "errorCode" not in as_json(event())
    assert "errorMessage" not in as_json(event())
    failed = as_json(event(error=DisabledException(f"{KEY_ARN} is disabled.")))
    assert failed["errorCode"] == "DisabledException"
    assert failed["errorMessage"] == f"{KEY_ARN} is disabled."
    # CloudTrail puts them right after userAgent.
    assert list(failed)[8:10] == ["errorCode", "errorMessage"]


def test_mutation_records_response_elements_with_the_key_arn() -> None:
    scheduled = api_call_event(
        operation="ScheduleKeyDeletion",
        caller=caller(),
        params={"KeyId": KEY_ID, "PendingWindowInDays": 20},
        event_time=START,
        request_id="r",
        resources=[KEY_ARN],
        response={"KeyId": KEY_ARN, "KeyState": "PendingDeletion", "DeletionDate": START + 20},
    )
    record = as_json(scheduled)
    assert record["readOnly"] is False
    assert record["requestParameters"] == {"keyId": KEY_ID, "pendingWindowInDays": 20}
    assert record["responseElements"] == {
        "keyId": KEY_ARN,
        "keyState": "PendingDeletion",
        "deletionDate": START + 20,
    }


def test_failed_mutation_has_no_response_elements() -> None:
    record = as_json(event(operation="DisableKey", error=DisabledException("no")))
    assert record["responseElements"] is None


def test_generate_random_has_null_parameters_and_no_resources() -> None:
    record = as_json(event(operation="GenerateRandom", key_arn=None, params={"NumberOfBytes": 8}))
    assert record["requestParameters"] is None
    assert record["resources"] == []


def test_update_alias_lists_alias_then_key_resources() -> None:
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/app"
    record = as_json(
        api_call_event(
            operation="UpdateAlias",
            caller=caller(),
            params={"AliasName": "alias/app", "TargetKeyId": KEY_ID},
            event_time=START,
            request_id="r",
            resources=[alias_arn, KEY_ARN],
        )
    )
    assert [r["ARN"] for r in record["resources"]] == [alias_arn, KEY_ARN]
    assert record["responseElements"] == {"keyId": KEY_ARN}


@pytest.mark.parametrize(
    ("arn", "identity"),
    [
        (
            f"arn:aws:iam::{ACCOUNT}:root",
            {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root"},
        ),
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/session-1",
            {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/session-1"},
        ),
        (
            "dynamodb.amazonaws.com",
            {"type": "AWSService", "invokedBy": "dynamodb.amazonaws.com"},
        ),
    ],
    ids=["root", "assumed-role", "service"],
)
def test_identity_types(arn: str, identity: dict[str, str]) -> None:
    record = as_json(event(who=caller(arn, access_key_id="")))
    assert record["userIdentity"] == {**identity, "accountId": ACCOUNT}


def test_principal_id_is_recorded_when_known() -> None:
    recorded = api_call_event(
        operation="DescribeKey",
        caller=caller(),
        params={"KeyId": KEY_ID},
        event_time=START,
        request_id="r",
        principal_id="AIDAEXAMPLE",
    )
    assert as_json(recorded)["userIdentity"]["principalId"] == "AIDAEXAMPLE"


def test_service_event_shape() -> None:
    rotated = service_event(
        event_name="RotateKey",
        account_id=ACCOUNT,
        region=REGION,
        event_time=START,
        resources=[KEY_ARN],
        details={"rotationType": "AUTOMATIC", "keyId": KEY_ID},
    )
    record = as_json(rotated)
    assert record["userIdentity"] == {"accountId": ACCOUNT, "invokedBy": "AWS Internal"}
    assert record["eventType"] == "AwsServiceEvent"
    assert record["sourceIPAddress"] == record["userAgent"] == "AWS Internal"
    assert record["requestParameters"] is None and record["responseElements"] is None
    assert "requestID" not in record
    assert record["readOnly"] is False
    assert record["serviceEventDetails"] == {"rotationType": "AUTOMATIC", "keyId": KEY_ID}
    deleted = as_json(
        service_event(
            event_name="DeleteKey",
            account_id=ACCOUNT,
            region=REGION,
            event_time=START,
            resources=[KEY_ARN],
        )
    )
    assert "serviceEventDetails" not in deleted


def test_decode_gives_back_the_event() -> None:
    original = event(error=DisabledException("off"))
    assert decode_event(encode_event(original)) == original


def test_event_time_round_trip() -> None:
    assert format_event_time(START + 0.75) == "2027-01-15T08:00:00Z"
    assert parse_event_time("2027-01-15T08:00:00Z") == START


@pytest.mark.parametrize(
    ("operation", "read_only"),
    [
        ("Encrypt", True),
        ("Decrypt", True),
        ("ReEncrypt", True),
        ("GenerateDataKey", True),
        ("GenerateDataKeyWithoutPlaintext", True),
        ("GenerateRandom", True),
        ("DescribeKey", True),
        ("ListAliases", True),
        ("GetKeyPolicy", True),
        ("CreateKey", False),
        ("CreateGrant", False),
        ("RetireGrant", False),
        ("PutKeyPolicy", False),
        ("ScheduleKeyDeletion", False),
        ("TagResource", False),
    ],
)
def test_read_only_as_cloudtrail_marks_it(operation: str, read_only: bool) -> None:
    assert (operation in READ_ONLY_OPERATIONS) is read_only


@pytest.mark.parametrize("failed", [False, True], ids=["succeeded", "failed"])
@pytest.mark.parametrize("operation", sorted(FUSED_OPERATIONS))
def test_the_read_only_capture_is_the_general_capture(operation: str, failed: bool) -> None:
    """The fused operations' shortcut must capture exactly what ``capture_call`` does (so
    every fused operation must be read-only: a mutation's capture has response elements)."""
    who = msgspec.structs.replace(caller(), user_id="AIDAALICE")
    params = {"KeyId": KEY_ID, "EncryptionContext": {"app": "billing"}, "Plaintext": "c2VjcmV0"}
    error = DisabledException(f"{KEY_ARN} is disabled.") if failed else None
    general = capture_call(
        operation,
        who,
        params,
        event_time=START,
        request_id="req-1",
        resources=[KEY_ARN],
        error=error,
        principal_id=who.user_id,
    )
    shortcut = capture_read_only(operation, who, params, START, "req-1", [KEY_ARN], error)
    assert shortcut == general
    assert shortcut.principal_id == "AIDAALICE" and shortcut.request_parameters is not None
    assert "c2VjcmV0" not in str(shortcut)
