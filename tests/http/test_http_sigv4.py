"""SigV4 over the wire: who may call, with which clock, region and account."""

from __future__ import annotations

import datetime
import time
import urllib.parse
from typing import Any

import botocore.auth
import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.http.conftest import (
    ACCESS_KEY_ID,
    JSON_11,
    OTHER_ACCESS_KEY_ID,
    OTHER_SECRET_ACCESS_KEY,
    OTHER_USER_ARN,
    REGION,
    SECRET_ACCESS_KEY,
    TEMP_ACCESS_KEY_ID,
    TEMP_SECRET_ACCESS_KEY,
    TEMP_SESSION_TOKEN,
    ClientFactory,
    assert_aws_error,
    error_of,
    new_key,
    raw_request,
    send_raw,
)

DEV = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)


def test_missing_authorization(endpoint: str) -> None:
    reply = raw_request(endpoint, b"{}", sign=False)
    document = assert_aws_error(reply, "MissingAuthenticationTokenException", reply.status)
    assert reply.status in (400, 403)
    assert document["message"] == "Request is missing Authentication Token"


def test_unknown_access_key(make_client: ClientFactory) -> None:
    kms = make_client(access_key_id="AKIANOBODYKNOWSTHIS1")
    error = error_of(kms.list_keys)
    assert error["Error"]["Code"] == "UnrecognizedClientException"
    assert error["Error"]["Message"] == "The security token included in the request is invalid."
    assert error["ResponseMetadata"]["RequestId"]


def test_wrong_secret(make_client: ClientFactory) -> None:
    kms = make_client(secret_access_key="not-the-secret")
    error = error_of(kms.list_keys)
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert error["Error"]["Message"].startswith("The request signature we calculated does not")


def test_tampered_body_breaks_the_signature(endpoint: str) -> None:
    request = AWSRequest(
        method="POST",
        url=f"{endpoint}/",
        data=b'{"Limit": 1}',
        headers={"Content-Type": JSON_11, "X-Amz-Target": "TrentService.ListKeys"},
    )
    SigV4Auth(DEV, "kms", REGION).add_auth(request)
    headers = dict(request.headers.items())
    reply = send_raw(f"{endpoint}/", b'{"Limit": 2}', headers, "POST")
    assert_aws_error(reply, "InvalidSignatureException")


@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew_over_15_minutes(endpoint: str, minutes: int) -> None:
    reply = raw_request(endpoint, b"{}", now=time.time() + minutes * 60)
    message = assert_aws_error(reply, "InvalidSignatureException")["message"]
    expected = "Signature expired: " if minutes < 0 else "Signature not yet current: "
    assert message.startswith(expected), message


def test_clock_skew_within_15_minutes_is_accepted(endpoint: str) -> None:
    for minutes in (-14, 14):
        reply = raw_request(endpoint, b"{}", now=time.time() + minutes * 60)
        assert reply.status == 200, reply.body


def test_old_signature_from_botocore_expires(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        minutes=20
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: stale)
    error = error_of(make_client().list_keys)
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert error["Error"]["Message"].startswith("Signature expired: ")


def test_session_token_identity(make_client: ClientFactory, endpoint: str) -> None:
    temporary = make_client(
        access_key_id=TEMP_ACCESS_KEY_ID,
        secret_access_key=TEMP_SECRET_ACCESS_KEY,
        session_token=TEMP_SESSION_TOKEN,
    )
    key = new_key(temporary, Description="made with temporary credentials")
    blob = temporary.encrypt(KeyId=key["KeyId"], Plaintext=b"t")["CiphertextBlob"]
    assert temporary.decrypt(CiphertextBlob=blob)["Plaintext"] == b"t"

    without = make_client(
        access_key_id=TEMP_ACCESS_KEY_ID, secret_access_key=TEMP_SECRET_ACCESS_KEY
    )
    assert error_of(without.list_keys)["Error"]["Code"] == "UnrecognizedClientException"
    wrong = make_client(
        access_key_id=TEMP_ACCESS_KEY_ID,
        secret_access_key=TEMP_SECRET_ACCESS_KEY,
        session_token="not-the-token",
    )
    assert error_of(wrong.list_keys)["Error"]["Code"] == "UnrecognizedClientException"
    # A long-term key with a token it does not have is refused too.
    extra = make_client(session_token=TEMP_SESSION_TOKEN)
    assert error_of(extra.list_keys)["Error"]["Code"] == "UnrecognizedClientException"
    # The temporary identity belongs to the development account: same key namespace.
    assert make_client().describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Arn"] == key["Arn"]


def _presigned_url(endpoint: str, signer: type[SigV4QueryAuth], expires: int = 60) -> str:
    request = AWSRequest(method="POST", url=f"{endpoint}/", data=b"", headers={})
    signer(DEV, "kms", REGION, expires=expires).add_auth(request)
    url: str = request.prepare().url
    return url


def test_presigned_query_string_request(endpoint: str) -> None:
    url = _presigned_url(endpoint, SigV4QueryAuth)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and "X-Amz-Signature" in query
    headers = {"X-Amz-Target": "TrentService.ListKeys", "Content-Type": JSON_11}
    reply = send_raw(url, b"", headers, "POST")
    assert reply.status == 200, reply.body
    assert "Keys" in reply.json()


def test_presigned_request_with_unsigned_payload(endpoint: str, kms: Any) -> None:
    # A presigned URL signed with UNSIGNED-PAYLOAD carries any JSON body.
    key_id = new_key(kms)["KeyId"]
    url = _presigned_url(endpoint, S3SigV4QueryAuth)
    headers = {"X-Amz-Target": "TrentService.DescribeKey", "Content-Type": JSON_11}
    reply = send_raw(url, f'{{"KeyId": "{key_id}"}}'.encode(), headers, "POST")
    assert reply.status == 200, reply.body
    assert reply.json()["KeyMetadata"]["KeyId"] == key_id


def test_presigned_request_with_a_forged_signature(endpoint: str) -> None:
    url = _presigned_url(endpoint, SigV4QueryAuth)
    forged = url[:-1] + ("0" if url[-1] != "0" else "1")
    headers = {"X-Amz-Target": "TrentService.ListKeys", "Content-Type": JSON_11}
    assert_aws_error(send_raw(forged, b"", headers, "POST"), "InvalidSignatureException")


def test_expired_presigned_request(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    signed_at = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        seconds=120
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: signed_at)
    url = _presigned_url(endpoint, SigV4QueryAuth, expires=60)
    headers = {"X-Amz-Target": "TrentService.ListKeys", "Content-Type": JSON_11}
    document = assert_aws_error(send_raw(url, b"", headers, "POST"), "InvalidSignatureException")
    assert document["message"].startswith("Signature expired: ")


def test_region_of_the_scope_picks_the_key_namespace(make_client: ClientFactory) -> None:
    east, west = make_client(region="us-east-1"), make_client(region="eu-west-1")
    key = new_key(east)
    assert key["Arn"].startswith("arn:aws:kms:us-east-1:")
    error = error_of(west.describe_key, KeyId=key["KeyId"])
    assert error["Error"]["Code"] == "NotFoundException"
    assert error_of(west.encrypt, KeyId=key["KeyId"], Plaintext=b"x")["Error"]["Code"] == (
        "NotFoundException"
    )
    blob = east.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert error_of(west.decrypt, CiphertextBlob=blob)["Error"]["Code"] == (
        "InvalidCiphertextException"
    )
    west_key = new_key(west)
    assert west_key["Arn"].startswith("arn:aws:kms:eu-west-1:")
    east_ids = {entry["KeyId"] for entry in east.list_keys(Limit=1000)["Keys"]}
    assert west_key["KeyId"] not in east_ids


def test_accounts_cannot_see_each_others_keys(make_client: ClientFactory) -> None:
    mine = make_client()
    theirs = make_client(
        access_key_id=OTHER_ACCESS_KEY_ID, secret_access_key=OTHER_SECRET_ACCESS_KEY
    )
    key = new_key(mine)
    other_key = new_key(theirs)
    assert other_key["AWSAccountId"] == "444455556666"
    assert other_key["Arn"].startswith("arn:aws:kms:us-east-1:444455556666:key/")

    error = error_of(theirs.describe_key, KeyId=key["KeyId"])
    assert error["Error"]["Code"] == "NotFoundException", error["Error"]
    # By ARN another account's key is reachable, and its default key policy refuses.
    error = error_of(theirs.describe_key, KeyId=key["Arn"])
    assert error["Error"]["Code"] == "AccessDeniedException", error["Error"]
    assert error["Error"]["Message"].startswith(
        f"User: {OTHER_USER_ARN} is not authorized to perform: kms:DescribeKey on resource: "
        f"{key['Arn']}"
    )
    assert error_of(theirs.encrypt, KeyId=key["KeyId"], Plaintext=b"x")["Error"]["Code"] == (
        "NotFoundException"
    )
    assert error_of(mine.describe_key, KeyId=other_key["KeyId"])["Error"]["Code"] == (
        "NotFoundException"
    )
    mine.create_alias(AliasName=f"alias/mine-{key['KeyId']}", TargetKeyId=key["KeyId"])
    error = error_of(theirs.describe_key, KeyId=f"alias/mine-{key['KeyId']}")
    assert error["Error"]["Code"] == "NotFoundException"

    blob = mine.encrypt(KeyId=key["KeyId"], Plaintext=b"private")["CiphertextBlob"]
    assert error_of(theirs.decrypt, CiphertextBlob=blob)["Error"]["Code"] == (
        "AccessDeniedException"
    )
    their_blob = theirs.encrypt(KeyId=other_key["KeyId"], Plaintext=b"theirs")["CiphertextBlob"]
    assert error_of(mine.decrypt, CiphertextBlob=their_blob)["Error"]["Code"] == (
        "AccessDeniedException"
    )
    assert theirs.decrypt(CiphertextBlob=their_blob)["Plaintext"] == b"theirs"
    their_ids = {entry["KeyId"] for entry in theirs.list_keys(Limit=1000)["Keys"]}
    assert key["KeyId"] not in their_ids and other_key["KeyId"] in their_ids
