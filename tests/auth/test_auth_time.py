"""Clock skew and presigned-URL expiry, with an injected clock."""

from __future__ import annotations

import datetime

import pytest

from kms_actors.auth import IdentityStore, SigV4Verifier
from kms_actors.errors import InvalidSignatureException

from ._botocore import NOW, SIGNED_AT, STS_FORM, STS_URL, Sent, signed, user, verifier

MINUTE = 60.0


@pytest.mark.parametrize("offset", [-14 * MINUTE, 14 * MINUTE, -15 * MINUTE, 15 * MINUTE])
def test_skew_within_fifteen_minutes_passes(offset: float) -> None:
    signed().verify_with(verifier(now=NOW + offset))


def test_signature_signed_sixteen_minutes_ago_has_expired() -> None:
    with pytest.raises(InvalidSignatureException) as caught:
        signed().verify_with(verifier(now=NOW + 16 * MINUTE))
    assert caught.value.message == (
        "Signature expired: 20261129T010000Z is now earlier than 20261129T010100Z "
        "(20261129T011600Z - 15 min.)"
    )


def test_signature_from_sixteen_minutes_ahead_is_not_yet_current() -> None:
    with pytest.raises(InvalidSignatureException) as caught:
        signed().verify_with(verifier(now=NOW - 16 * MINUTE))
    assert caught.value.message == (
        "Signature not yet current: 20261129T010000Z is still later than 20261129T005900Z "
        "(20261129T004400Z + 15 min.)"
    )


def test_clock_is_checked_before_the_signature() -> None:
    # AWS reports the stale date even when the secret is wrong too.
    with pytest.raises(InvalidSignatureException, match="Signature expired"):
        signed(secret="wrong").verify_with(verifier(now=NOW + 16 * MINUTE))


def test_skew_window_is_configurable() -> None:
    strict = SigV4Verifier(IdentityStore([user()]), now=lambda: NOW + 90, max_skew_seconds=60)
    with pytest.raises(InvalidSignatureException, match=r"\(20261129T010130Z - 1 min\.\)"):
        signed().verify_with(strict)


# --- Presigned URLs ---------------------------------------------------------------------------


def _presigned_get(expires: int = 300) -> Sent:
    return signed(url=STS_URL, method="GET", data=b"", service="sts", presign_expires=expires)


def test_presigned_url_verifies_until_it_expires() -> None:
    request = _presigned_get(expires=300)
    assert "X-Amz-Signature=" in request.query
    assert "Authorization" not in request.headers
    for later in (0, 100, 300):
        verified = request.verify_with(verifier(now=NOW + later))
        assert verified.service == "sts"


def test_presigned_url_past_its_expiry() -> None:
    with pytest.raises(InvalidSignatureException) as caught:
        _presigned_get(expires=300).verify_with(verifier(now=NOW + 301))
    assert caught.value.message == (
        "Signature expired: 20261129T010000Z is now earlier than 20261129T010001Z "
        "(20261129T010501Z - 5 min.)"
    )


def test_presigned_url_may_outlive_the_skew_window() -> None:
    _presigned_get(expires=3600).verify_with(verifier(now=NOW + 3000))


def test_presigned_url_from_the_future() -> None:
    with pytest.raises(InvalidSignatureException, match="Signature not yet current"):
        _presigned_get().verify_with(verifier(now=NOW - 16 * MINUTE))


def test_presigned_sts_form_post() -> None:
    # botocore moves a form body into the query string when presigning.
    request = signed(url=STS_URL, data=STS_FORM, service="sts", presign_expires=60)
    assert request.body == b""
    assert "Action=GetCallerIdentity" in request.query
    request.verify_with(verifier())


def test_presigned_query_tampering() -> None:
    request = signed(url=STS_URL, data=STS_FORM, service="sts", presign_expires=60)
    tampered = request._replace(query=request.query.replace("GetCallerIdentity", "AssumeRole"))
    with pytest.raises(InvalidSignatureException, match="does not match"):
        tampered.verify_with(verifier())


def test_presigned_with_session_token() -> None:
    temporary = user(session_token="FwoGZXIvYXdzEJr//token+/=", expiration=NOW + 3600)
    request = signed(
        url=STS_URL, data=STS_FORM, service="sts", presign_expires=60, token=temporary.session_token
    )
    assert "X-Amz-Security-Token=FwoGZXIvYXdzEJr%2F%2Ftoken%2B%2F%3D" in request.query
    assert request.verify_with(verifier(temporary)).identity == temporary


def test_presigned_url_binds_its_empty_body() -> None:
    # botocore moves a JSON body into the query and signs the empty body's hash, so a body
    # smuggled in later breaks the signature.
    at = SIGNED_AT + datetime.timedelta(seconds=30)
    request = signed(presign_expires=60, at=at)
    assert request.body == b""
    assert "KeyId=alias%2Forders" in request.query
    request.verify_with(verifier(now=NOW + 30))
    with pytest.raises(InvalidSignatureException):
        request._replace(body=b"{}").verify_with(verifier(now=NOW + 30))


def test_presigned_url_with_unsigned_payload_accepts_any_body() -> None:
    request = signed(url=STS_URL, method="GET", data=b"", presign_expires=60, unsigned_query=True)
    request._replace(body=b"anything").verify_with(verifier())
