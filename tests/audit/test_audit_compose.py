"""The request path's capture and the writer's composer give exactly ``api_call_event``'s event."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from kms_actors.audit import AuditEvent, api_call_event, capture_call, encode_event
from kms_actors.audit._chain import unchained_record
from kms_actors.audit._compose import Composer
from kms_actors.domain.principal import Caller
from kms_actors.errors import DisabledException, KmsError

from .audit_support import (
    ACCOUNT,
    BOB,
    KEY_ARN,
    KEY_ID,
    OTHER_ACCOUNT,
    OTHER_KEY_ARN,
    REGION,
    START,
    caller,
)

ALIAS_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/app"

# Each case: the arguments api_call_event and capture_call share.
CASES: dict[str, dict[str, Any]] = {
    "encrypt": {
        "operation": "Encrypt",
        "caller": caller(),
        "params": {"KeyId": KEY_ID, "Plaintext": b"secret", "EncryptionContext": {"a": "b"}},
        "resources": [KEY_ARN],
    },
    "refused": {
        "operation": "Decrypt",
        "caller": caller(BOB, access_key_id="AKIABOB"),
        "params": {"CiphertextBlob": b"blob"},
        "resources": [KEY_ARN],
        "error": DisabledException(f"{KEY_ARN} is disabled."),
    },
    "error-without-message": {
        "operation": "DescribeKey",
        "caller": caller(),
        "params": {"KeyId": "nope"},
        "error": KmsError(""),
    },
    "mutation": {
        "operation": "ScheduleKeyDeletion",
        "caller": caller(),
        "params": {"KeyId": KEY_ID, "PendingWindowInDays": 7},
        "resources": [KEY_ARN],
        "response": {"KeyId": KEY_ARN, "KeyState": "PendingDeletion", "DeletionDate": START},
    },
    "alias-and-two-keys": {
        "operation": "ReEncrypt",
        "caller": caller(),
        "params": {"SourceKeyId": "alias/app", "DestinationKeyId": OTHER_KEY_ARN},
        "resources": [ALIAS_ARN, KEY_ARN, OTHER_KEY_ARN, KEY_ARN],
    },
    "root-no-resources": {
        "operation": "GenerateRandom",
        "caller": Caller.root(ACCOUNT, REGION),
        "params": {"NumberOfBytes": 8},
    },
    "assumed-role-with-principal-id": {
        "operation": "ListKeys",
        "caller": caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/s1"),
        "params": {"Limit": 10},
        "principal_id": "AROAEXAMPLE:s1",
    },
    "service-principal": {
        "operation": "CreateGrant",
        "caller": caller("dynamodb.amazonaws.com", access_key_id=""),
        "params": {"KeyId": KEY_ID, "GranteePrincipal": BOB, "Operations": ["Decrypt"]},
        "resources": [KEY_ARN],
        "response": {"GrantId": "g-1", "GrantToken": "secret-token"},
    },
    "other-account": {
        "operation": "Encrypt",
        "caller": caller(account_id=OTHER_ACCOUNT),
        "params": {"KeyId": KEY_ARN},
        "resources": [KEY_ARN],
        "recipient_account_id": ACCOUNT,
    },
}


def _event(args: dict[str, Any], at: float) -> AuditEvent:
    return api_call_event(event_time=at, request_id="r-1", **args)


def _composed(composer: Composer, args: dict[str, Any], at: float) -> Any:
    operation, who, params = args["operation"], args["caller"], args["params"]
    rest = {k: v for k, v in args.items() if k not in ("operation", "caller", "params")}
    return composer.compose(
        capture_call(operation, who, params, event_time=at, request_id="r-1", **rest)
    )


def _without_id(event_json: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(event_json)
    assert decoded.pop("eventID")
    return decoded


@pytest.mark.parametrize("case", list(CASES))
def test_composed_event_is_api_call_event(case: str) -> None:
    composer = Composer()
    for at in (START, START + 0.5, START + 1):  # twice from the caches, then a new second
        expected = _event(CASES[case], at)
        event_json, columns, names = _composed(composer, CASES[case], at)
        assert _without_id(event_json) == _without_id(encode_event(expected))
        # Byte for byte, with CloudTrail's member order, once the event id is the same.
        event_id = json.loads(event_json)["eventID"]
        same = msgspec.structs.replace(expected, event_id=event_id)
        assert event_json == encode_event(same)
        record = unchained_record(same, event_json)
        assert columns == msgspec.structs.astuple(record)[1:-3]
        assert (json.loads(names) if names else []) == list(record.resources)


def test_capture_keeps_no_secret_and_no_live_reference() -> None:
    context = {"purpose": "test"}
    call = capture_call(
        "Encrypt",
        caller(),
        {"KeyId": KEY_ID, "Plaintext": b"PLAINTEXT", "EncryptionContext": context},
        event_time=START,
        request_id=None,
        resources=[KEY_ARN],
    )
    context["purpose"] = "changed later"  # the caller's dict, after the request
    assert call.request_parameters == {"keyId": KEY_ID, "encryptionContext": {"purpose": "test"}}
    assert b"PLAINTEXT" not in msgspec.json.encode(call.request_parameters)
    assert call.request_id  # a fresh one when the request had none


def test_caches_stay_bounded() -> None:
    composer = Composer()
    for number in range(10_000):
        who = caller(f"arn:aws:iam::{ACCOUNT}:user/u{number}", access_key_id=f"AKIA{number}")
        _composed(composer, {**CASES["encrypt"], "caller": who}, START)
    assert len(composer._identities) <= 4096
