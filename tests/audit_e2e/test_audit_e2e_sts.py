"""STS calls on the endpoint leave CloudTrail's events: AssumeRole and GetCallerIdentity.

A server whose configuration adds a role answers boto3's ``sts`` client; the events are read
back from the audit store and through boto3's ``cloudtrail.lookup_events``. The secret access
key and session token AssumeRole hands out must never reach the audit files. The last tests
call the STS handler directly with an audit log that fails, to check that it fails closed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from kms_actors.audit._sts_event import format_expiration
from kms_actors.auth import Identity, Role, RoleStore
from kms_actors.domain.policy import compile_policy
from kms_actors.domain.principal import Caller
from kms_actors.errors import KMSInternalException
from kms_actors.http import _sts as sts
from tests.audit_e2e.audit_e2e_support import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    NOBODY_ACCESS_KEY_ID,
    NOBODY_ARN,
    NOBODY_SECRET_ACCESS_KEY,
    REGION,
    USER_ARN,
    ClientFactory,
    assert_no_secrets,
    client_factory,
    event_of,
    events,
    head_seq,
    write_config,
)
from tests.http.conftest import ServerProcess, raw_request, start_server

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/audit/app"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/app/"
STS = "sts.amazonaws.com"
# The account root is trusted, so the administrator "dev" may assume the role (its identity
# policy allows everything) and "nobody" (no identity policy) may not.
_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
_ROLE = f"""

[[roles]]
arn = "{ROLE_ARN}"
trust_policy = {json.dumps(_TRUST)}
max_session_duration_seconds = 7200
"""
_ASSUME_ANY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    }
)
_EXPIRATION = re.compile(r"[A-Z][a-z]{2} [0-9]{1,2}, [0-9]{4}, [0-9]{1,2}:[0-9]{2}:[0-9]{2} [AP]M")


@pytest.fixture(scope="module")
def sts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own (the tests count its events), with the role above."""
    config = write_config(tmp_path_factory.mktemp("sts-config") / "kms-sts.toml")
    config.write_text(config.read_text() + _ROLE)
    running = start_server(tmp_path_factory.mktemp("sts-server") / "data", config)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def make(boto_session: Any, sts_server: ServerProcess) -> ClientFactory:
    """Return ``make(service="kms", ...)``: a boto3 client of the STS test server."""
    return client_factory(boto_session, sts_server.endpoint)


def _request_id(reply: dict[str, Any]) -> str:
    request_id: str = reply["ResponseMetadata"]["RequestId"]
    return request_id


def _refused(call: Any, /, **params: Any) -> tuple[str, str, str]:
    """Return the code, message and request id of a call that must fail."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    response = caught.value.response
    return response["Error"]["Code"], response["Error"]["Message"], _request_id(response)


def _session_client(boto_session: Any, endpoint: str, credentials: dict[str, Any]) -> Any:
    return boto_session.client(
        "sts",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def test_assume_role_is_recorded_as_cloudtrail_does(
    sts_server: ServerProcess, make: ClientFactory
) -> None:
    reply = make("sts").assume_role(
        RoleArn=ROLE_ARN, RoleSessionName="audit-e2e", DurationSeconds=900, ExternalId="ext-42"
    )
    event = event_of(sts_server.data_dir, _request_id(reply))
    credentials, user = reply["Credentials"], reply["AssumedRoleUser"]
    assert event["eventSource"] == STS
    assert (event["eventName"], event["eventType"], event["readOnly"]) == (
        "AssumeRole",
        "AwsApiCall",
        False,
    )
    identity = event["userIdentity"]
    assert (identity["type"], identity["arn"], identity["userName"]) == ("IAMUser", USER_ARN, "dev")
    assert (identity["accountId"], identity["accessKeyId"]) == (ACCOUNT_ID, ACCESS_KEY_ID)
    assert identity["principalId"].startswith("AIDA")
    assert event["requestParameters"] == {
        "roleArn": ROLE_ARN,
        "roleSessionName": "audit-e2e",
        "durationSeconds": 900,
        "externalId": "ext-42",
    }
    elements = event["responseElements"]
    assert elements["assumedRoleUser"] == {
        "assumedRoleId": user["AssumedRoleId"],
        "arn": f"{SESSION_ARN}audit-e2e",
    }
    assert set(elements["credentials"]) == {"accessKeyId", "expiration"}
    assert elements["credentials"]["accessKeyId"] == credentials["AccessKeyId"]
    expiration = elements["credentials"]["expiration"]
    assert _EXPIRATION.fullmatch(expiration), expiration
    parsed = dt.datetime.strptime(expiration, "%b %d, %Y, %I:%M:%S %p").replace(tzinfo=dt.UTC)
    assert parsed == credentials["Expiration"]
    assert event["resources"] == [
        {"ARN": ROLE_ARN, "accountId": ACCOUNT_ID, "type": "AWS::IAM::Role"}
    ]
    assert (event["awsRegion"], event["recipientAccountId"]) == (REGION, ACCOUNT_ID)
    assert event["sourceIPAddress"] == "127.0.0.1"
    assert event["userAgent"].startswith("Boto3/")
    assert "errorCode" not in event and "errorMessage" not in event


def test_assume_role_leaves_no_secret_or_token_in_the_audit_files(
    sts_server: ServerProcess, make: ClientFactory, boto_session: Any
) -> None:
    secrets: dict[str, bytes] = {}
    for number in range(3):
        reply = make("sts").assume_role(RoleArn=ROLE_ARN, RoleSessionName=f"secret-{number}")
        credentials = reply["Credentials"]
        secrets[f"secret-{number}"] = credentials["SecretAccessKey"].encode()
        secrets[f"token-{number}"] = credentials["SessionToken"].encode()
        # The session's own calls are recorded too (under its access key id, never its token).
        me = _session_client(boto_session, sts_server.endpoint, credentials)
        event = event_of(sts_server.data_dir, _request_id(me.get_caller_identity()))
        assert event["userIdentity"]["arn"] == f"{SESSION_ARN}secret-{number}"
        assert event["userIdentity"]["accessKeyId"] == credentials["AccessKeyId"]
    assert_no_secrets(sts_server.data_dir, secrets)
    stored = json.dumps(events(sts_server.data_dir))
    assert "sessionToken" not in stored and "secretAccessKey" not in stored


@pytest.mark.parametrize(
    ("params", "code", "named"),
    [
        ({"RoleArn": ROLE_ARN, "RoleSessionName": "denied"}, "AccessDenied", True),
        ({"RoleArn": f"{ROLE_ARN}-missing", "RoleSessionName": "no-role"}, "AccessDenied", True),
        ({"RoleArn": ROLE_ARN, "RoleSessionName": "x"}, "ValidationError", True),
        ({"RoleArn": "not-an-arn-at-all", "RoleSessionName": "bad-arn"}, "ValidationError", False),
    ],
)
def test_refused_assume_role_is_recorded_with_its_error(
    sts_server: ServerProcess,
    make: ClientFactory,
    params: dict[str, str],
    code: str,
    named: bool,
) -> None:
    nobody = make(
        "sts",
        access_key_id=NOBODY_ACCESS_KEY_ID,
        secret_access_key=NOBODY_SECRET_ACCESS_KEY,
        validate=False,
    )
    got, message, request_id = _refused(nobody.assume_role, **params)
    assert got == code
    event = event_of(sts_server.data_dir, request_id)
    assert (event["eventSource"], event["eventName"]) == (STS, "AssumeRole")
    assert (event["errorCode"], event["errorMessage"]) == (code, message)
    assert event["userIdentity"]["arn"] == NOBODY_ARN
    assert event["responseElements"] is None
    assert event["requestParameters"] == {
        "roleArn": params["RoleArn"],
        "roleSessionName": params["RoleSessionName"],
    }
    role = params["RoleArn"]
    expected = [{"ARN": role, "accountId": ACCOUNT_ID, "type": "AWS::IAM::Role"}]
    assert event["resources"] == (expected if named else [])


def test_unsupported_parameters_are_refused_and_not_recorded(
    sts_server: ServerProcess, make: ClientFactory
) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    code, _, request_id = _refused(
        make("sts").assume_role, RoleArn=ROLE_ARN, RoleSessionName="narrow", Policy=policy
    )
    assert code == "ValidationError"
    event = event_of(sts_server.data_dir, request_id)
    assert event["errorCode"] == "ValidationError"
    assert event["requestParameters"] == {"roleArn": ROLE_ARN, "roleSessionName": "narrow"}


def test_get_caller_identity_is_recorded_as_read_only(
    sts_server: ServerProcess, make: ClientFactory
) -> None:
    reply = make("sts", region="eu-west-1").get_caller_identity()
    event = event_of(sts_server.data_dir, _request_id(reply))
    assert (event["eventSource"], event["eventName"], event["readOnly"]) == (
        STS,
        "GetCallerIdentity",
        True,
    )
    assert event["userIdentity"]["arn"] == USER_ARN == reply["Arn"]
    assert event["userIdentity"]["principalId"] == reply["UserId"]
    assert (event["requestParameters"], event["responseElements"]) == (None, None)
    assert event["resources"] == []
    assert event["awsRegion"] == "eu-west-1"


def test_every_authenticated_sts_call_leaves_exactly_one_event(
    sts_server: ServerProcess, make: ClientFactory
) -> None:
    sts_client = make("sts")
    nobody = make(
        "sts", access_key_id=NOBODY_ACCESS_KEY_ID, secret_access_key=NOBODY_SECRET_ACCESS_KEY
    )
    before = head_seq(sts_server.data_dir)
    request_ids = [
        _request_id(sts_client.get_caller_identity()),
        _request_id(sts_client.assume_role(RoleArn=ROLE_ARN, RoleSessionName="one")),
        _refused(nobody.assume_role, RoleArn=ROLE_ARN, RoleSessionName="two")[2],
        _refused(sts_client.get_session_token)[2],  # InvalidAction: an STS action not served
    ]
    # Not authenticated, or naming no STS action: answered, not recorded (as for KMS).
    forged = make("sts", secret_access_key="not-the-secret")
    assert _refused(forged.get_caller_identity)[0] == "SignatureDoesNotMatch"
    unknown = raw_request(
        sts_server.endpoint,
        b"Action=Frobnicate&Version=2011-06-15",
        target=None,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        service="sts",
    )
    assert unknown.status == 400 and b"InvalidAction" in unknown.body
    stored = events(sts_server.data_dir)[before:]
    assert [event["requestID"] for event in stored] == request_ids
    assert [event["eventName"] for event in stored] == [
        "GetCallerIdentity",
        "AssumeRole",
        "AssumeRole",
        "GetSessionToken",
    ]
    assert [event.get("errorCode") for event in stored] == [
        None,
        None,
        "AccessDenied",
        "InvalidAction",
    ]


def _lookup(cloudtrail: Any, key: str, value: str, **params: Any) -> list[dict[str, Any]]:
    attributes = [{"AttributeKey": key, "AttributeValue": value}]
    found: list[dict[str, Any]] = []
    for page in cloudtrail.get_paginator("lookup_events").paginate(
        LookupAttributes=attributes, **params
    ):
        found.extend(page["Events"])
    return found


def _ids(found: list[dict[str, Any]], among: list[str]) -> list[str]:
    """Return the request ids of the events found that are ``among`` these, in their order."""
    ids = [json.loads(event["CloudTrailEvent"])["requestID"] for event in found]
    return [request_id for request_id in ids if request_id in among]


def test_lookup_events_tells_sts_events_from_kms_events(make: ClientFactory) -> None:
    kms, sts_client, cloudtrail = make(), make("sts"), make("cloudtrail")
    first = _request_id(kms.create_key())
    assumed = _request_id(sts_client.assume_role(RoleArn=ROLE_ARN, RoleSessionName="lookup"))
    # More STS events than the lookup scans in one page, between two KMS events.
    whoami = [_request_id(sts_client.get_caller_identity()) for _ in range(205)]
    last = _request_id(kms.list_keys())
    mine = [first, assumed, *whoami, last]

    by_sts = _lookup(cloudtrail, "EventSource", STS)
    assert {event["EventSource"] for event in by_sts} == {STS}
    assert _ids(by_sts, mine) == [*reversed(whoami), assumed]  # newest first
    [assume] = [e for e in by_sts if _ids([e], mine) == [assumed]]
    assert (assume["EventName"], assume["ReadOnly"], assume["Username"]) == (
        "AssumeRole",
        "false",
        "dev",
    )
    assert assume["Resources"] == [{"ResourceType": "AWS::IAM::Role", "ResourceName": ROLE_ARN}]

    # One KMS event per page: the second page has to look past 206 STS events.
    by_kms = _lookup(cloudtrail, "EventSource", "kms.amazonaws.com", MaxResults=1)
    assert {event["EventSource"] for event in by_kms} == {"kms.amazonaws.com"}
    assert _ids(by_kms, mine) == [last, first]

    by_role = _lookup(cloudtrail, "ResourceType", "AWS::IAM::Role")
    assert {event["EventName"] for event in by_role} == {"AssumeRole"}
    assert _ids(by_role, mine) == [assumed]
    by_name = _lookup(cloudtrail, "ResourceName", ROLE_ARN)
    assert {event["EventName"] for event in by_name} == {"AssumeRole"}
    assert _ids(by_name, mine) == [assumed]
    by_keys = _lookup(cloudtrail, "ResourceType", "AWS::KMS::Key")
    assert {event["EventSource"] for event in by_keys} == {"kms.amazonaws.com"}


def test_get_key_last_usage_ignores_sts_events(make: ClientFactory) -> None:
    kms, sts_client = make(), make("sts")
    key = kms.create_key()["KeyMetadata"]
    encrypted = _request_id(kms.encrypt(KeyId=key["KeyId"], Plaintext=b"usage"))
    sts_client.assume_role(RoleArn=ROLE_ARN, RoleSessionName="usage")
    sts_client.get_caller_identity()
    usage = kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]
    assert (usage["Operation"], usage["KmsRequestId"]) == ("Encrypt", encrypted)


# --- failing closed: the STS handler with an audit log that cannot be written ---------------


class _FailingAudit:
    """An audit log whose writes fail (``healthy=False``: known to fail before any request)."""

    def __init__(self, *, healthy: bool) -> None:
        self.healthy = healthy
        self.offered: list[Any] = []

    def ensure_healthy(self) -> None:
        if not self.healthy:
            raise KMSInternalException()

    async def record(self, item: Any) -> None:
        self.offered.append(item)
        raise KMSInternalException()


def _store_and_caller() -> tuple[RoleStore, Identity, Caller]:
    user = Identity(
        access_key_id=ACCESS_KEY_ID,
        secret_access_key="s",
        account_id=ACCOUNT_ID,
        arn=USER_ARN,
        policies=(compile_policy(_ASSUME_ANY, kind="identity"),),
    )
    role = Role(arn=ROLE_ARN, trust_policy=compile_policy(_TRUST, kind="trust"))
    caller = Caller(account_id=ACCOUNT_ID, region=REGION, arn=USER_ARN, access_key_id=ACCESS_KEY_ID)
    return RoleStore([user], roles=[role]), user, caller


@pytest.mark.anyio
@pytest.mark.parametrize("healthy", [True, False])
async def test_an_assume_role_that_cannot_be_recorded_fails(healthy: bool) -> None:
    store, user, caller = _store_and_caller()
    audit = _FailingAudit(healthy=healthy)
    form = {"Action": "AssumeRole", "RoleArn": ROLE_ARN, "RoleSessionName": "unrecorded"}
    status, body = await sts.answer(
        audit,  # type: ignore[arg-type]
        store,
        caller,
        user,
        form,
        now=1_800_000_000.0,
        request_id="req-1",
    )
    assert status == 500
    assert b"<Code>InternalFailure</Code>" in body and b"<Type>Receiver</Type>" in body
    assert b"SecretAccessKey" not in body and b"ASIA" not in body
    # Only a healthy log lets a session be issued (its credentials are never sent).
    assert len(store) == (2 if healthy else 1)
    [event] = audit.offered
    assert (event.event_source, event.event_name) == (STS, "AssumeRole")
    if not healthy:
        assert (event.error_code, event.response_elements) == ("InternalFailure", None)


@pytest.mark.anyio
async def test_a_get_caller_identity_that_cannot_be_recorded_fails() -> None:
    store, user, caller = _store_and_caller()
    audit = _FailingAudit(healthy=True)
    status, body = await sts.answer(
        audit,  # type: ignore[arg-type]
        store,
        caller,
        user,
        {"Action": "GetCallerIdentity"},
        now=1_800_000_000.0,
        request_id="req-2",
    )
    assert status == 500 and b"<Code>InternalFailure</Code>" in body
    assert USER_ARN.encode() not in body
    assert [event.event_name for event in audit.offered] == ["GetCallerIdentity"]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (dt.datetime(2026, 11, 29, 10, 0, 0), "Nov 29, 2026, 10:00:00 AM"),
        (dt.datetime(2026, 1, 2, 0, 5, 9), "Jan 2, 2026, 12:05:09 AM"),
        (dt.datetime(2026, 7, 4, 12, 0, 0), "Jul 4, 2026, 12:00:00 PM"),
        (dt.datetime(2026, 12, 31, 23, 59, 59), "Dec 31, 2026, 11:59:59 PM"),
    ],
)
def test_expiration_is_written_as_cloudtrail_writes_it(moment: dt.datetime, expected: str) -> None:
    assert format_expiration(moment.replace(tzinfo=dt.UTC).timestamp()) == expected
