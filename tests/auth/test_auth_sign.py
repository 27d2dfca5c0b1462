"""Our own signer agrees with botocore, and the canonical forms follow AWS's rules."""

from __future__ import annotations

import pytest

from kms_actors.auth import sign_headers
from kms_actors.auth._sigv4 import (
    SigningKeys,
    canonical_path,
    canonical_query,
    derive_signing_key,
)

from ._botocore import (
    ACCESS_KEY,
    KMS_BODY,
    KMS_HEADERS,
    NOW,
    REGION,
    SECRET,
    STS_FORM,
    STS_HEADERS,
    Sent,
    signed,
    user,
    verifier,
)

URLS = [
    "https://kms.us-east-1.amazonaws.com/",
    "https://kms.us-east-1.amazonaws.com",
    "http://127.0.0.1:4566/",
    "http://localhost:80/",
    "https://kms.us-east-1.amazonaws.com/a//b/./c?z=1&a=x%2Fy",
]


def _ours(url: str, token: str | None = None, **overrides: object) -> dict[str, str]:
    arguments: dict[str, object] = {
        "method": "POST",
        "url": url,
        "headers": KMS_HEADERS,
        "body": KMS_BODY,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
        "region": REGION,
        "service": "kms",
        "session_token": token,
        "now": NOW,
    }
    arguments.update(overrides)
    return sign_headers(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//token+/="], ids=["keys", "token"])
def test_signature_equals_botocores(url: str, token: str | None) -> None:
    theirs = signed(url=url, token=token)
    ours = _ours(url, token)
    assert ours["Authorization"] == theirs.headers["Authorization"]
    assert ours["X-Amz-Date"] == theirs.headers["X-Amz-Date"] == "20261129T010000Z"
    assert ours.get("X-Amz-Security-Token") == theirs.headers.get("X-Amz-Security-Token")
    assert set(ours) == {"Authorization", "X-Amz-Date"} | (
        {"X-Amz-Security-Token"} if token else set()
    )


def test_sts_form_signature_equals_botocores() -> None:
    theirs = signed(
        url="https://sts.amazonaws.com/", data=STS_FORM, headers=STS_HEADERS, service="sts"
    )
    ours = _ours("https://sts.amazonaws.com/", headers=STS_HEADERS, body=theirs.body, service="sts")
    assert ours["Authorization"] == theirs.headers["Authorization"]


def test_our_signature_verifies() -> None:
    url = "http://127.0.0.1:4566/"
    headers = {**KMS_HEADERS, **_ours(url), "Host": "127.0.0.1:4566", "Content-Length": "51"}
    verified = Sent("POST", "/", "", headers, KMS_BODY).verify_with(verifier())
    assert verified.identity == user()


def test_stale_auth_headers_from_the_caller_are_replaced() -> None:
    stale = {**KMS_HEADERS, "Authorization": "old", "x-amz-date": "19990101T000000Z"}
    assert _ours(URLS[0], headers=stale) == _ours(URLS[0])


def test_host_header_given_by_the_caller_is_signed() -> None:
    ours = _ours(URLS[2], headers={**KMS_HEADERS, "Host": "kms.internal"})
    headers = {**KMS_HEADERS, **ours, "Host": "kms.internal"}
    Sent("POST", "/", "", headers, KMS_BODY).verify_with(verifier())


# --- Canonical forms and keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("/", "/"),
        ("", "/"),
        ("/a/./b/../c", "/a/c"),
        ("//a//b/", "/a/b/"),
        ("/a%20b/~x", "/a%2520b/~x"),
        ("/..", "/"),
    ],
)
def test_canonical_path(raw: str, canonical: str) -> None:
    assert canonical_path(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1", "a=1&a=2"),
        ("flag", "flag="),
        ("c=%7E&d=%2b&e=a+b&f=%E2%82%AC&g=%FF", "c=~&d=%2B&e=a%2Bb&f=%E2%82%AC&g=%FF"),
        ("k=v&X-Amz-Signature=abc", "X-Amz-Signature=abc&k=v"),
    ],
)
def test_canonical_query(raw: str, canonical: str) -> None:
    assert canonical_query(raw) == canonical


def test_canonical_query_omits_the_signature_of_a_presigned_url() -> None:
    assert canonical_query("k=v&X-Amz-Signature=abc", omit="X-Amz-Signature") == "k=v"


def test_signing_key_matches_aws_documentation_example() -> None:
    # The worked example of AWS's SigV4 documentation (secret, 20120215, us-east-1, iam).
    key = derive_signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"
    )
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_signing_key_cache_is_bounded() -> None:
    keys = SigningKeys(max_entries=2)
    first = keys.get("s", "20261129", "us-east-1", "kms")
    assert keys.get("s", "20261129", "us-east-1", "kms") is first
    keys.get("s", "20261129", "eu-west-1", "kms")
    keys.get("s", "20261130", "us-east-1", "kms")
    assert len(keys) == 2
    assert keys.get("s", "20261129", "us-east-1", "kms") is not first  # evicted, derived again


def test_verifier_caches_one_key_per_scope() -> None:
    checker = verifier()
    for _ in range(3):
        signed().verify_with(checker)
    signed(region="eu-west-1").verify_with(checker)
    assert len(checker._keys) == 2
