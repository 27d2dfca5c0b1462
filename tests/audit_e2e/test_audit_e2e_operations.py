"""Every implemented operation leaves exactly one event with CloudTrail's fields for KMS.

The same scenario runs over HTTP (boto3 against the real server) and through the embedded
client; each call's event is found by the request id the caller got back.
"""

from __future__ import annotations

import datetime
import pathlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from kms_actors.audit import READ_ONLY_OPERATIONS
from kms_actors.ops import HANDLERS
from tests.audit_e2e.audit_e2e_support import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    NOBODY_ACCESS_KEY_ID,
    NOBODY_ARN,
    NOBODY_SECRET_ACCESS_KEY,
    REGION,
    USER_ARN,
    ClientFactory,
    embedded,
    event_of,
    events,
    head_seq,
)
from tests.http.conftest import ServerProcess

OPERATIONS = (
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "UpdateKeyDescription",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateRandom",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "ListAliases",
    "TagResource",
    "UntagResource",
    "ListResourceTags",
    "GetKeyPolicy",
    "PutKeyPolicy",
    "ListKeyPolicies",
    "CreateGrant",
    "ListGrants",
    "ListRetirableGrants",
    "RetireGrant",
    "RevokeGrant",
)
CONTEXT = {"purpose": "audit-e2e", "tenant": "t-1"}
OTHER_CONTEXT = {"purpose": "audit-e2e-other"}


@dataclass
class Call:
    """One request of the scenario: what was asked, what came back, what it should log."""

    operation: str
    request_id: str
    parameters: dict[str, Any] | None  # the expected requestParameters
    resources: list[str]  # the key (and alias) ARNs the event must name
    new_events: int  # how many events the store gained during the call
    started: float
    optional: list[str] = field(default_factory=list)  # ARNs it may name besides


@dataclass
class Scenario:
    """Every call of the scenario by operation, and where its events are."""

    data_dir: pathlib.Path
    principal_arn: str
    identity_type: str
    access_key_id: str | None
    user_agent: str
    calls: dict[str, Call] = field(default_factory=dict)


def run_scenario(kms: Any, data_dir: pathlib.Path, scenario: Scenario) -> None:
    """Call every implemented operation once (for the table), recording request ids."""

    def call(
        operation: str,
        method: str,
        parameters: dict[str, Any] | None,
        resources: list[str],
        /,
        **params: Any,
    ) -> Any:
        before, started = head_seq(data_dir), time.time()
        response = getattr(kms, method)(**params)
        scenario.calls[operation] = Call(
            operation=operation,
            request_id=response["ResponseMetadata"]["RequestId"],
            parameters=parameters,
            resources=resources,
            new_events=head_seq(data_dir) - before,
            started=started,
        )
        return response

    other = kms.create_key(Description="destination")["KeyMetadata"]
    tags = [{"TagKey": "team", "TagValue": "audit"}]
    created = call(
        "CreateKey",
        "create_key",
        {"description": "audit e2e", "tags": [{"tagKey": "team", "tagValue": "audit"}]},
        [],  # filled in below, once the new key's ARN is known
        Description="audit e2e",
        Tags=tags,
    )
    key_id, arn = created["KeyMetadata"]["KeyId"], created["KeyMetadata"]["Arn"]
    scenario.calls["CreateKey"].resources = [arn]
    one = [arn]
    call("DescribeKey", "describe_key", {"keyId": key_id}, one, KeyId=key_id)
    call("ListKeys", "list_keys", {"limit": 5}, [], Limit=5)
    call(
        "UpdateKeyDescription",
        "update_key_description",
        {"keyId": arn, "description": "renamed"},
        one,
        KeyId=arn,
        Description="renamed",
    )
    call("DisableKey", "disable_key", {"keyId": key_id}, one, KeyId=key_id)
    call("EnableKey", "enable_key", {"keyId": key_id}, one, KeyId=key_id)
    blob = call(
        "Encrypt",
        "encrypt",
        {"keyId": key_id, "encryptionContext": CONTEXT},
        one,
        KeyId=key_id,
        Plaintext=b"table test plaintext",
        EncryptionContext=CONTEXT,
    )["CiphertextBlob"]
    call(
        "Decrypt",
        "decrypt",
        {"encryptionContext": CONTEXT},
        one,
        CiphertextBlob=blob,
        EncryptionContext=CONTEXT,
    )
    call(
        "ReEncrypt",
        "re_encrypt",
        {
            "sourceEncryptionContext": CONTEXT,
            "destinationKeyId": other["KeyId"],
            "destinationEncryptionContext": OTHER_CONTEXT,
        },
        [arn, other["Arn"]],
        CiphertextBlob=blob,
        SourceEncryptionContext=CONTEXT,
        DestinationKeyId=other["KeyId"],
        DestinationEncryptionContext=OTHER_CONTEXT,
    )
    call(
        "GenerateDataKey",
        "generate_data_key",
        {"keyId": key_id, "keySpec": "AES_256", "encryptionContext": CONTEXT},
        one,
        KeyId=key_id,
        KeySpec="AES_256",
        EncryptionContext=CONTEXT,
    )
    call(
        "GenerateDataKeyWithoutPlaintext",
        "generate_data_key_without_plaintext",
        {"keyId": key_id, "numberOfBytes": 32},
        one,
        KeyId=key_id,
        NumberOfBytes=32,
    )
    call("GenerateRandom", "generate_random", None, [], NumberOfBytes=16)
    # CloudTrail names the alias and its key(s) for alias changes.
    alias = f"alias/audit-e2e-{uuid.uuid4().hex[:12]}"
    named = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias}"
    call(
        "CreateAlias",
        "create_alias",
        {"aliasName": alias, "targetKeyId": key_id},
        [named, arn],
        AliasName=alias,
        TargetKeyId=key_id,
    )
    call(
        "UpdateAlias",
        "update_alias",
        {"aliasName": alias, "targetKeyId": other["KeyId"]},
        [named, other["Arn"]],
        AliasName=alias,
        TargetKeyId=other["KeyId"],
    )
    scenario.calls["UpdateAlias"].optional = [arn]  # the key it pointed to before
    call(
        "ListAliases",
        "list_aliases",
        {"keyId": other["KeyId"]},
        [other["Arn"]],
        KeyId=other["KeyId"],
    )
    call(
        "DeleteAlias",
        "delete_alias",
        {"aliasName": alias},
        [named, other["Arn"]],
        AliasName=alias,
    )
    call(
        "TagResource",
        "tag_resource",
        {"keyId": key_id, "tags": [{"tagKey": "env", "tagValue": "test"}]},
        one,
        KeyId=key_id,
        Tags=[{"TagKey": "env", "TagValue": "test"}],
    )
    call(
        "UntagResource",
        "untag_resource",
        {"keyId": key_id, "tagKeys": ["env"]},
        one,
        KeyId=key_id,
        TagKeys=["env"],
    )
    call("ListResourceTags", "list_resource_tags", {"keyId": key_id}, one, KeyId=key_id)
    policy = call(
        "GetKeyPolicy",
        "get_key_policy",
        {"keyId": key_id, "policyName": "default"},
        one,
        KeyId=key_id,
        PolicyName="default",
    )["Policy"]
    call(
        "PutKeyPolicy",
        "put_key_policy",
        {"keyId": key_id, "policyName": "default", "policy": policy},
        one,
        KeyId=key_id,
        PolicyName="default",
        Policy=policy,
    )
    call("ListKeyPolicies", "list_key_policies", {"keyId": key_id}, one, KeyId=key_id)
    me = scenario.principal_arn
    grant = call(
        "CreateGrant",
        "create_grant",
        {
            "keyId": key_id,
            "granteePrincipal": me,
            "retiringPrincipal": me,
            "operations": ["Encrypt", "Decrypt"],
        },
        one,
        KeyId=key_id,
        GranteePrincipal=me,
        RetiringPrincipal=me,
        Operations=["Encrypt", "Decrypt"],
    )
    call("ListGrants", "list_grants", {"keyId": key_id}, one, KeyId=key_id)
    call(
        "ListRetirableGrants",
        "list_retirable_grants",
        {"retiringPrincipal": me},
        [],
        RetiringPrincipal=me,
    )
    call(
        "RetireGrant",
        "retire_grant",
        {"keyId": arn, "grantId": grant["GrantId"]},
        one,
        KeyId=arn,
        GrantId=grant["GrantId"],
    )
    second = kms.create_grant(KeyId=key_id, GranteePrincipal=me, Operations=["Decrypt"])
    call(
        "RevokeGrant",
        "revoke_grant",
        {"keyId": key_id, "grantId": second["GrantId"]},
        one,
        KeyId=key_id,
        GrantId=second["GrantId"],
    )
    call(
        "ScheduleKeyDeletion",
        "schedule_key_deletion",
        {"keyId": key_id, "pendingWindowInDays": 7},
        one,
        KeyId=key_id,
        PendingWindowInDays=7,
    )
    call("CancelKeyDeletion", "cancel_key_deletion", {"keyId": key_id}, one, KeyId=key_id)


@pytest.fixture(scope="module")
def http_scenario(server: ServerProcess, make_client: ClientFactory) -> Scenario:
    """The scenario over HTTP, signed as the development identity."""
    scenario = Scenario(server.data_dir, USER_ARN, "IAMUser", ACCESS_KEY_ID, "Boto3/")
    run_scenario(make_client(), server.data_dir, scenario)
    return scenario


@pytest.fixture(scope="module")
def embedded_scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """The scenario through the embedded client, as the account root."""
    data_dir = tmp_path_factory.mktemp("embedded") / "data"
    root = f"arn:aws:iam::{ACCOUNT_ID}:root"
    scenario = Scenario(data_dir, root, "Root", None, "kms_actors-embedded")
    with embedded(data_dir) as kms:
        run_scenario(kms, data_dir, scenario)
        yield scenario


@pytest.fixture(params=["http", "embedded"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    """The scenario over each transport."""
    found: Scenario = request.getfixturevalue(f"{request.param}_scenario")
    return found


def test_the_table_covers_every_implemented_operation(embedded_scenario: Scenario) -> None:
    # GetKeyLastUsage has its own tests (test_audit_e2e_usage); any other operation the
    # router implements needs a row here.
    missing = set(HANDLERS) - set(OPERATIONS) - {"GetKeyLastUsage"}
    assert not missing, f"operations without a row in the audit table test: {sorted(missing)}"
    assert set(embedded_scenario.calls) == set(OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_operation_leaves_one_event_with_cloudtrails_fields(
    scenario: Scenario, operation: str
) -> None:
    call = scenario.calls[operation]
    assert call.new_events == 1, f"{operation} wrote {call.new_events} events"
    event = event_of(scenario.data_dir, call.request_id)
    assert event["eventVersion"] == "1.08"
    assert event["eventName"] == operation
    assert event["eventSource"] == "kms.amazonaws.com"
    assert event["awsRegion"] == REGION
    assert event["eventType"] == "AwsApiCall"
    assert event["readOnly"] is (operation in READ_ONLY_OPERATIONS)
    assert event["managementEvent"] is True
    assert event["eventCategory"] == "Management"
    assert event["recipientAccountId"] == ACCOUNT_ID
    assert uuid.UUID(event["eventID"])
    identity = event["userIdentity"]
    assert identity["type"] == scenario.identity_type
    assert identity["arn"] == scenario.principal_arn
    assert identity["accountId"] == ACCOUNT_ID
    assert identity.get("accessKeyId") == scenario.access_key_id
    assert scenario.user_agent in event["userAgent"]
    moment = datetime.datetime.fromisoformat(event["eventTime"]).timestamp()
    assert call.started - 1 <= moment <= time.time() + 1
    assert event["requestParameters"] == call.parameters
    named = [r["ARN"] for r in event["resources"]]
    assert len(set(named)) == len(named), named
    assert set(call.resources) <= set(named) <= set(call.resources + call.optional), named
    assert all(r["type"] == "AWS::KMS::Key" for r in event["resources"])
    assert all(r["accountId"] == ACCOUNT_ID for r in event["resources"])
    assert "errorCode" not in event and "errorMessage" not in event
    if event["readOnly"]:
        assert event["responseElements"] is None


def test_create_key_records_the_new_key_metadata(http_scenario: Scenario) -> None:
    event = event_of(http_scenario.data_dir, http_scenario.calls["CreateKey"].request_id)
    metadata = event["responseElements"]["keyMetadata"]
    assert metadata["arn"] == http_scenario.calls["CreateKey"].resources[0]
    assert metadata["keyState"] == "Enabled"
    assert metadata["description"] == "audit e2e"


def test_http_events_name_the_source_address(http_scenario: Scenario) -> None:
    event = event_of(http_scenario.data_dir, http_scenario.calls["Encrypt"].request_id)
    assert event["sourceIPAddress"] == "127.0.0.1"
    assert event["userIdentity"]["userName"] == "dev"


# --- refused requests ----------------------------------------------------------------------


def _error(call: Any, /, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    response: dict[str, Any] = caught.value.response
    return response


def test_denied_requests_are_recorded_with_principal_and_reason(
    server: ServerProcess, make_client: ClientFactory
) -> None:
    key = make_client().create_key()["KeyMetadata"]
    nobody = make_client(
        access_key_id=NOBODY_ACCESS_KEY_ID, secret_access_key=NOBODY_SECRET_ACCESS_KEY
    )
    for method, params, resource in [
        (
            "encrypt",
            {"KeyId": key["KeyId"], "Plaintext": b"no", "EncryptionContext": CONTEXT},
            key["Arn"],
        ),
        ("create_key", {"Description": "not mine"}, "*"),
    ]:
        before = head_seq(server.data_dir)
        failure = _error(getattr(nobody, method), **params)
        assert failure["Error"]["Code"] == "AccessDeniedException"
        assert head_seq(server.data_dir) == before + 1
        event = event_of(server.data_dir, failure["ResponseMetadata"]["RequestId"])
        assert event["errorCode"] == "AccessDeniedException"
        assert event["errorMessage"] == failure["Error"]["Message"]
        assert NOBODY_ARN in event["errorMessage"]
        assert f"on resource: {resource}" in event["errorMessage"]
        assert "because no identity-based policy allows" in event["errorMessage"]
        assert event["userIdentity"]["arn"] == NOBODY_ARN
        assert event["userIdentity"]["accessKeyId"] == NOBODY_ACCESS_KEY_ID
        assert event["responseElements"] is None
    encrypt = [e for e in events(server.data_dir) if e.get("errorCode")][-2]
    assert encrypt["eventName"] == "Encrypt"
    assert encrypt["requestParameters"] == {"keyId": key["KeyId"], "encryptionContext": CONTEXT}
    assert [r["ARN"] for r in encrypt["resources"]] == [key["Arn"]]


def test_invalid_requests_are_recorded_with_the_validation_error(
    server: ServerProcess, make_client: ClientFactory
) -> None:
    kms = make_client(validate=False)
    key = kms.create_key()["KeyMetadata"]
    cases = [
        ("generate_random", {"NumberOfBytes": 5000}, "GenerateRandom", "numberOfBytes"),
        (
            "schedule_key_deletion",
            {"KeyId": key["KeyId"], "PendingWindowInDays": 3},
            "ScheduleKeyDeletion",
            "pendingWindowInDays",
        ),
        ("encrypt", {"KeyId": "", "Plaintext": b"x"}, "Encrypt", "keyId"),
    ]
    for method, params, operation, member in cases:
        before = head_seq(server.data_dir)
        failure = _error(getattr(kms, method), **params)
        assert failure["Error"]["Code"] == "ValidationException", failure
        assert head_seq(server.data_dir) == before + 1
        event = event_of(server.data_dir, failure["ResponseMetadata"]["RequestId"])
        assert event["eventName"] == operation
        assert event["errorCode"] == "ValidationException"
        assert event["errorMessage"] == failure["Error"]["Message"]
        assert member in event["errorMessage"]
        assert event["responseElements"] is None
        assert event["userIdentity"]["arn"] == USER_ARN


def test_operations_not_implemented_yet_are_recorded_too(
    server: ServerProcess, make_client: ClientFactory
) -> None:
    kms = make_client()
    before = head_seq(server.data_dir)
    try:
        request_id = kms.describe_custom_key_stores()["ResponseMetadata"]["RequestId"]
    except ClientError as error:
        request_id = error.response["ResponseMetadata"]["RequestId"]
    assert head_seq(server.data_dir) == before + 1
    assert event_of(server.data_dir, request_id)["eventName"] == "DescribeCustomKeyStores"
