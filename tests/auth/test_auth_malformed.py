"""Unsigned and malformed requests get AWS's MissingAuthenticationToken / IncompleteSignature."""

from __future__ import annotations

import pytest

from kms_actors.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

from ._botocore import KMS_BODY, Sent, signed, verifier

CREDENTIAL = "AKIAIOSFODNN7EXAMPLE/20261129/us-east-1/kms/aws4_request"
SIGNED_HEADERS = "content-type;host;x-amz-date;x-amz-target"
SIGNATURE = "a" * 64


def _request(authorization: str | None, *, date: str | None = "20261129T010000Z") -> Sent:
    headers = {"Host": "kms.us-east-1.amazonaws.com", "X-Amz-Target": "TrentService.Encrypt"}
    if date is not None:
        headers["X-Amz-Date"] = date
    if authorization is not None:
        headers["Authorization"] = authorization
    return Sent("POST", "/", "", headers, KMS_BODY)


def _incomplete(request: Sent) -> str:
    with pytest.raises(IncompleteSignatureException) as caught:
        request.verify_with(verifier())
    assert caught.value.status == 400
    return caught.value.message


def test_no_authentication_at_all() -> None:
    with pytest.raises(MissingAuthenticationTokenException) as caught:
        _request(None).verify_with(verifier())
    assert caught.value.message == "Request is missing Authentication Token"


def test_a_query_without_signing_parameters_is_still_unauthenticated() -> None:
    request = _request(None)._replace(query="X-Amz-Date=20261129T010000Z&Action=x")
    with pytest.raises(MissingAuthenticationTokenException):
        request.verify_with(verifier())


def test_every_missing_parameter_is_named() -> None:
    header = "AWS4-HMAC-SHA256 Foo=bar"
    assert _incomplete(_request(header, date=None)) == (
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={header}"
    )


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        (f"AWS4-HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}, Signature={SIGNATURE}", "Credential"),
        (f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders={SIGNED_HEADERS}", "Signature"),
        (f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, Signature={SIGNATURE}", "SignedHeaders"),
    ],
    ids=["credential", "signature", "signed-headers"],
)
def test_one_missing_parameter(header: str, missing: str) -> None:
    assert _incomplete(_request(header)) == (
        f"Authorization header requires '{missing}' parameter. Authorization={header}"
    )


def test_missing_date() -> None:
    header = (
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders={SIGNED_HEADERS}, "
        f"Signature={SIGNATURE}"
    )
    assert _incomplete(_request(header, date=None)) == (
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={header}"
    )


def test_a_bearer_token_is_not_a_sigv4_header() -> None:
    header = "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"
    assert _incomplete(_request(header)) == (
        "'eyJhbGciOiJIUzI1NiJ9.e30.sig' not a valid key=value pair (missing equal-sign) "
        f"in Authorization header: '{header}'."
    )


def test_space_inside_the_credential() -> None:
    # A pasted access key with a trailing space: AWS splits on whitespace as well as commas.
    header = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE /20261129/us-east-1/kms/aws4_request, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={SIGNATURE}"
    )
    assert _incomplete(_request(header)) == (
        "'/20261129/us-east-1/kms/aws4_request' not a valid key=value pair (missing equal-sign) "
        f"in Authorization header: '{header}'."
    )


def test_wrong_algorithm() -> None:
    header = (
        f"AWS4-HMAC-SHA512 Credential={CREDENTIAL}, SignedHeaders={SIGNED_HEADERS}, "
        f"Signature={SIGNATURE}"
    )
    assert _incomplete(_request(header)) == "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'."


@pytest.mark.parametrize(
    "date", ["2026-11-29T01:00:00Z", "20261129T0100Z", "20261131T010000Z", "yesterday"]
)
def test_malformed_date(date: str) -> None:
    header = (
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders={SIGNED_HEADERS}, "
        f"Signature={SIGNATURE}"
    )
    assert _incomplete(_request(header, date=date)) == (
        f"Date must be in ISO-8601 'basic format'. Got '{date}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def test_host_must_be_signed() -> None:
    header = (
        f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders=x-amz-date;x-amz-target, "
        f"Signature={SIGNATURE}"
    )
    with pytest.raises(InvalidSignatureException) as caught:
        _request(header).verify_with(verifier())
    assert caught.value.message == (
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    )


def test_header_and_presigned_query_together() -> None:
    request = signed()._replace(query="X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00")
    with pytest.raises(InvalidSignatureException, match="does not match"):
        request.verify_with(verifier())


# --- Presigned query form ---------------------------------------------------------------------


def _presigned(query: str) -> Sent:
    return Sent("GET", "/", query, {"Host": "sts.amazonaws.com"}, b"")


def test_presigned_with_every_parameter_missing() -> None:
    assert _incomplete(_presigned("X-Amz-Algorithm=AWS4-HMAC-SHA256")) == (
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "AWS query-string parameters must include 'X-Amz-Signature'. "
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "AWS query-string parameters must include 'X-Amz-Date'. "
        "Re-examine the query-string parameters."
    )


def test_presigned_with_another_algorithm_is_unauthenticated() -> None:
    with pytest.raises(MissingAuthenticationTokenException):
        _presigned("X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Signature=00").verify_with(verifier())


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("soon", "X-Amz-Expires should be a number"),
        ("-5", "X-Amz-Expires must be non-negative"),
        ("604801", "X-Amz-Expires must be less than a week (in seconds) that is 604800"),
    ],
)
def test_presigned_with_bad_expiry(expires: str, message: str) -> None:
    query = signed(presign_expires=60).query.replace("X-Amz-Expires=60", f"X-Amz-Expires={expires}")
    assert _incomplete(_presigned(query)) == message
