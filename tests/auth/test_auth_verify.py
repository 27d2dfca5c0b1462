"""Requests signed by botocore verify; every tampered part is caught with AWS's error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from kms_actors.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    KmsError,
    UnrecognizedClientException,
)

from ._botocore import (
    ACCESS_KEY,
    ACCOUNT,
    KMS_HEADERS,
    REGION,
    STS_FORM,
    STS_HEADERS,
    STS_URL,
    Sent,
    signed,
    user,
    verifier,
)

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


def test_kms_json_post_signed_by_botocore_verifies() -> None:
    verified = signed().verify_with(verifier())
    assert verified.identity == user()
    assert (verified.region, verified.service) == (REGION, "kms")
    assert verified.identity.account_id == ACCOUNT


def test_sts_form_post_signed_by_botocore_verifies() -> None:
    request = signed(url=STS_URL, data=STS_FORM, headers=STS_HEADERS, service="sts")
    assert request.body == b"Action=GetCallerIdentity&Version=2011-06-15"
    verified = request.verify_with(verifier())
    assert (verified.region, verified.service) == (REGION, "sts")


def test_region_comes_from_the_scope() -> None:
    verified = signed(region="eu-west-3").verify_with(verifier())
    assert verified.region == "eu-west-3"


def test_odd_path_and_query_canonicalize_as_botocore_does() -> None:
    url = "https://kms.us-east-1.amazonaws.com/a/./b/../c%20d//e/?b=2&a=1&a=0&c=~&d=x%2By&e"
    request = signed(url=url)
    assert request.path == "/a/./b/../c%20d//e/"
    request.verify_with(verifier())


def test_date_header_instead_of_x_amz_date() -> None:
    # With a Date header, botocore rewrites it (RFC 1123) and sends no X-Amz-Date.
    request = signed(headers={**KMS_HEADERS, "Date": "placeholder"})
    assert "X-Amz-Date" not in request.headers
    assert request.headers["Date"] == "Sun, 29 Nov 2026 01:00:00 -0000"
    request.verify_with(verifier())


def test_unsigned_payload_header_form_is_refused() -> None:
    # A header-signed request must cover its body; otherwise it could be replayed with another.
    request = signed(unsigned_payload=True)
    assert request.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    with pytest.raises(InvalidSignatureException):
        request.verify_with(verifier())
    with pytest.raises(InvalidSignatureException):
        request._replace(body=b'{"other": "body"}').verify_with(verifier())


def test_declared_payload_hash_must_match_the_body() -> None:
    request = signed(headers={**KMS_HEADERS, "X-Amz-Content-SHA256": "0" * 64})
    with pytest.raises(InvalidSignatureException):
        request.verify_with(verifier())


# --- Header names and values ------------------------------------------------------------------


@pytest.mark.parametrize("case", [str.lower, str.upper, str.title], ids=["lower", "upper", "title"])
def test_header_names_are_case_insensitive(case: Callable[[str], str]) -> None:
    request = signed()
    headers = {case(name): value for name, value in request.headers.items()}
    request._replace(headers=headers).verify_with(verifier())


def test_aiohttp_style_multidict_headers() -> None:
    request = signed()
    proxy = CIMultiDictProxy(CIMultiDict(request.headers))
    verifier().verify(method="POST", path="/", query="", headers=proxy, body=request.body)


def test_repeated_headers_are_joined_with_commas() -> None:
    request = signed(headers={**KMS_HEADERS, "X-Custom": "a,b"})
    headers: CIMultiDict[str] = CIMultiDict(request.headers)
    del headers["X-Custom"]
    headers.add("X-Custom", "a")
    headers.add("x-custom", "  b ")
    verifier().verify(method="POST", path="/", query="", headers=headers, body=request.body)


def test_repeated_spaces_in_header_values() -> None:
    request = signed(headers={**KMS_HEADERS, "X-Custom": "  a   b \t c  "})
    request.verify_with(verifier())
    # The canonical form collapses whitespace runs, so a proxy re-spacing them is harmless...
    request.replace_header("X-Custom", lambda _: "a b c").verify_with(verifier())
    # ...but changing the words is not.
    with pytest.raises(InvalidSignatureException):
        request.replace_header("X-Custom", lambda _: "a bc").verify_with(verifier())


# --- Tampering --------------------------------------------------------------------------------


def _flip_body_byte(request: Sent) -> Sent:
    body = bytearray(request.body)
    body[10] ^= 0x01
    return request._replace(body=bytes(body))


def _change_auth(old: str, new: str) -> Callable[[Sent], Sent]:
    def change(request: Sent) -> Sent:
        assert old in request.headers["Authorization"]
        return request.replace_header("Authorization", lambda value: value.replace(old, new))

    return change


TAMPERED_SIGNATURE = {
    "body byte": _flip_body_byte,
    "signed header": lambda r: r.replace_header("X-Amz-Target", lambda _: "TrentService.Decrypt"),
    "host": lambda r: r.replace_header("Host", lambda _: "kms.eu-west-1.amazonaws.com"),
    "path": lambda r: r._replace(path="/other"),
    "query": lambda r: r._replace(query="Action=Encrypt"),
    "method": lambda r: r._replace(method="PUT"),
    "date": lambda r: r.replace_header("X-Amz-Date", lambda _: "20261129T010001Z"),
    "region in scope": _change_auth("/us-east-1/", "/us-west-2/"),
    "signed headers list": _change_auth("content-type;host", "host"),
}


@pytest.mark.parametrize("tamper", TAMPERED_SIGNATURE.values(), ids=TAMPERED_SIGNATURE.keys())
def test_tampering_breaks_the_signature(tamper: Callable[[Sent], Sent]) -> None:
    with pytest.raises(InvalidSignatureException) as caught:
        tamper(signed()).verify_with(verifier())
    assert caught.value.message == MISMATCH


def test_wrong_secret() -> None:
    with pytest.raises(InvalidSignatureException, match="does not match"):
        signed(secret="not-the-secret").verify_with(verifier())


def test_unknown_access_key() -> None:
    with pytest.raises(UnrecognizedClientException) as caught:
        signed(access_key="AKIAUNKNOWNKEY000000").verify_with(verifier())
    assert caught.value.message == "The security token included in the request is invalid."


def test_wrong_signature_of_equal_length_is_rejected() -> None:
    request = signed()
    good = request.headers["Authorization"].rpartition("Signature=")[2]
    checker = verifier()
    for bad in ("0" * 64, good[:-1] + ("0" if good[-1] != "0" else "1"), good.upper()):
        assert len(bad) == len(good)
        with pytest.raises(InvalidSignatureException):
            _change_auth(good, bad)(request).verify_with(checker)
    request.verify_with(checker)


def test_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    request = signed()
    good = request.headers["Authorization"].rpartition("Signature=")[2]
    with pytest.raises(InvalidSignatureException):
        _change_auth(good, "é" * 64)(request).verify_with(verifier())


# --- Credential scope -------------------------------------------------------------------------


SCOPE_ERRORS = {
    "service": (
        "/kms/",
        "/s3/",
        "Credential should be scoped to correct service: 'kms'.",
    ),
    "terminator": (
        "/aws4_request",
        "/aws5_request",
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
    ),
    "date": (
        "/20261129/",
        "/20261128/",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20261128' != '20261129', from '20261129T010000Z'.",
    ),
    "region": (
        "/us-east-1/",
        "/us_east_1/",
        "Credential should be scoped to a valid region, not 'us_east_1'.",
    ),
}


@pytest.mark.parametrize(("old", "new", "message"), SCOPE_ERRORS.values(), ids=SCOPE_ERRORS.keys())
def test_bad_credential_scope(old: str, new: str, message: str) -> None:
    with pytest.raises(InvalidSignatureException) as caught:
        _change_auth(old, new)(signed()).verify_with(verifier())
    assert caught.value.message == message


def test_scope_problems_are_all_reported() -> None:
    request = _change_auth("/us-east-1/kms/aws4_request", "/us_east_1/s3/x")(signed())
    with pytest.raises(InvalidSignatureException) as caught:
        request.verify_with(verifier())
    assert caught.value.message == (
        "Credential should be scoped to a valid region, not 'us_east_1'. "
        "Credential should be scoped to correct service: 'kms'. "
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'x'."
    )


def test_credential_needs_five_parts() -> None:
    request = _change_auth("/aws4_request", "")(signed())
    with pytest.raises(IncompleteSignatureException) as caught:
        request.verify_with(verifier())
    assert caught.value.message == (
        "Credential must have exactly 5 slash-delimited elements, "
        f"e.g. keyid/date/region/service/term, got '{ACCESS_KEY}/20261129/us-east-1/kms'"
    )


def test_errors_carry_aws_codes_and_statuses() -> None:
    errors: list[KmsError] = []
    for request, checker in (
        (signed(secret="x"), verifier()),
        (signed(access_key="AKIAOTHER"), verifier()),
        (_change_auth("/aws4_request", "")(signed()), verifier()),
    ):
        with pytest.raises(KmsError) as caught:
            request.verify_with(checker)
        errors.append(caught.value)
    assert [(e.code, e.status) for e in errors] == [
        ("InvalidSignatureException", 400),
        ("UnrecognizedClientException", 400),
        ("IncompleteSignatureException", 400),
    ]
