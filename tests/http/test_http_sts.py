"""STS GetCallerIdentity on the KMS endpoint, as boto3's sts client sends it."""

from __future__ import annotations

import pytest

from tests.http.conftest import (
    ACCOUNT_ID,
    OTHER_ACCESS_KEY_ID,
    OTHER_ACCOUNT_ID,
    OTHER_SECRET_ACCESS_KEY,
    OTHER_USER_ARN,
    TEMP_ACCESS_KEY_ID,
    TEMP_ARN,
    TEMP_SECRET_ACCESS_KEY,
    TEMP_SESSION_TOKEN,
    USER_ARN,
    ClientFactory,
    error_of,
    raw_request,
)


def test_get_caller_identity(make_client: ClientFactory) -> None:
    identity = make_client("sts").get_caller_identity()
    assert identity["Account"] == ACCOUNT_ID
    assert identity["Arn"] == USER_ARN
    assert identity["UserId"].startswith("AIDA") and len(identity["UserId"]) == 21
    assert identity["ResponseMetadata"]["RequestId"]
    again = make_client("sts", region="eu-west-1").get_caller_identity()
    assert again["UserId"] == identity["UserId"]  # stable, whatever the Region


def test_get_caller_identity_of_other_principals(make_client: ClientFactory) -> None:
    other = make_client(
        "sts", access_key_id=OTHER_ACCESS_KEY_ID, secret_access_key=OTHER_SECRET_ACCESS_KEY
    ).get_caller_identity()
    assert (other["Account"], other["Arn"]) == (OTHER_ACCOUNT_ID, OTHER_USER_ARN)
    temporary = make_client(
        "sts",
        access_key_id=TEMP_ACCESS_KEY_ID,
        secret_access_key=TEMP_SECRET_ACCESS_KEY,
        session_token=TEMP_SESSION_TOKEN,
    ).get_caller_identity()
    assert (temporary["Account"], temporary["Arn"]) == (ACCOUNT_ID, TEMP_ARN)
    assert temporary["UserId"].startswith("AROA") and temporary["UserId"].endswith(":session-1")


@pytest.mark.parametrize(
    ("access_key_id", "secret", "code"),
    [
        ("AKIANOBODYKNOWSTHIS1", "whatever", "InvalidClientTokenId"),
        ("AKIAEXAMPLEDEV000001", "not-the-secret", "SignatureDoesNotMatch"),
    ],
)
def test_bad_credentials(
    make_client: ClientFactory, access_key_id: str, secret: str, code: str
) -> None:
    sts = make_client("sts", access_key_id=access_key_id, secret_access_key=secret)
    error = error_of(sts.get_caller_identity)
    assert error["Error"]["Code"] == code
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["ResponseMetadata"]["RequestId"]


def test_unknown_sts_action_is_an_xml_error(endpoint: str) -> None:
    reply = raw_request(
        endpoint,
        b"Action=GetSessionToken&Version=2011-06-15",
        target=None,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        service="sts",
    )
    assert reply.status == 400
    assert b"<Code>InvalidAction</Code>" in reply.body and b"Traceback" not in reply.body
    assert reply.headers["x-amzn-requestid"]


def test_sts_refuses_a_credential_scoped_to_kms(endpoint: str) -> None:
    # The scope names the service the signature is for; STS must not take a KMS signature,
    # just as KMS refuses one scoped to STS.
    reply = raw_request(
        endpoint,
        b"Action=GetCallerIdentity&Version=2011-06-15",
        target=None,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        service="kms",
    )
    assert reply.status == 403, reply.body
    assert b"<Code>SignatureDoesNotMatch</Code>" in reply.body


def test_kms_refuses_a_credential_scoped_to_sts(endpoint: str) -> None:
    reply = raw_request(endpoint, b"{}", target="TrentService.ListKeys", service="sts")
    assert reply.status == 400
    assert reply.json()["__type"] == "InvalidSignatureException"
