"""Read the SigV4 authentication out of a request: the Authorization header or the query string.

Only the shape is checked here (AWS's "incomplete signature" family of errors); the clock,
the scope, the credentials and the signature are the verifier's business. Messages are AWS's
own words, as boto3 users see them from real endpoints.
"""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Mapping
from typing import Final, NamedTuple
from urllib.parse import unquote

from kms_actors.auth._sigv4 import ALGORITHM, format_amz_date, parse_amz_date
from kms_actors.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

MISSING_AUTHENTICATION: Final = "Request is missing Authentication Token"
SIGNATURE_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_HOST_NOT_SIGNED: Final = (
    "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
)
_WEEK: Final = 604800


class SignedRequest(NamedTuple):
    """The authentication a request carries, before any of it is trusted."""

    credential: str  # keyid/date/region/service/terminator, unparsed
    signed_headers: list[str]  # lowercase, sorted
    signature: str
    amz_date: str  # ISO 8601 basic, as it goes into the string to sign
    timestamp: float  # the same instant in epoch seconds
    token: str | None
    expires: int | None  # X-Amz-Expires of a presigned URL
    presigned: bool


def query_auth_params(raw_query: str) -> dict[str, str] | None:
    """Return the decoded query parameters if the query carries ``X-Amz-Algorithm``, else None."""
    if "X-Amz-Algorithm" not in raw_query:
        return None
    params: dict[str, str] = {}
    for item in raw_query.split("&"):
        key, _, value = item.partition("=")
        params.setdefault(unquote(key), unquote(value))  # the first value wins, as in AWS
    return params if "X-Amz-Algorithm" in params else None


def from_authorization(authorization: str, headers: Mapping[str, str]) -> SignedRequest:
    """Parse an ``Authorization: AWS4-HMAC-SHA256 Credential=..., ...`` header.

    ``headers`` must have lowercase names.

    Raises:
        IncompleteSignatureException: a parameter or the date is missing or malformed, or the
            algorithm is not AWS4-HMAC-SHA256.
        InvalidSignatureException: ``host`` is not a signed header.
    """
    value = authorization.strip()
    algorithm, _, rest = value.partition(" ")
    params: dict[str, str] = {}
    # AWS separates the parameters by commas and/or whitespace.
    for part in rest.replace(",", " ").split():
        key, equals, param = part.partition("=")
        if not equals:
            raise IncompleteSignatureException(
                f"'{part}' not a valid key=value pair (missing equal-sign) in "
                f"Authorization header: '{value}'."
            )
        params[key] = param  # the last value wins, as in AWS
    credential = params.get("Credential")
    signature = params.get("Signature")
    signed = params.get("SignedHeaders")
    date = headers.get("x-amz-date")
    from_date_header = date is None
    if date is None:
        date = headers.get("date")
    if credential is None or signature is None or signed is None or date is None:
        missing = _missing_header_params(credential, signature, signed, date)
        raise IncompleteSignatureException(f"{missing} Authorization={value}")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(f"Unsupported AWS 'algorithm': '{algorithm}'.")
    amz_date, timestamp = _timestamp(date, from_date_header)
    token = headers.get("x-amz-security-token")
    names = _signed_headers(signed)
    return SignedRequest(credential, names, signature, amz_date, timestamp, token, None, False)


def _missing_header_params(
    credential: str | None, signature: str | None, signed: str | None, date: str | None
) -> str:
    missing = []
    if credential is None:
        missing.append("Authorization header requires 'Credential' parameter.")
    if signature is None:
        missing.append("Authorization header requires 'Signature' parameter.")
    if signed is None:
        missing.append("Authorization header requires 'SignedHeaders' parameter.")
    if date is None:
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    return " ".join(missing)


def from_query(params: Mapping[str, str]) -> SignedRequest:
    """Parse the ``X-Amz-*`` parameters of a presigned URL.

    Raises:
        MissingAuthenticationTokenException: the algorithm is not AWS4-HMAC-SHA256.
        IncompleteSignatureException: a parameter is missing or malformed.
        InvalidSignatureException: ``host`` is not a signed header.
    """
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise MissingAuthenticationTokenException(MISSING_AUTHENTICATION)
    credential = params.get("X-Amz-Credential")
    signature = params.get("X-Amz-Signature")
    signed = params.get("X-Amz-SignedHeaders")
    date = params.get("X-Amz-Date")
    if credential is None or signature is None or signed is None or date is None:
        missing = [
            f"AWS query-string parameters must include '{name}'."
            for name, param in (
                ("X-Amz-Credential", credential),
                ("X-Amz-Signature", signature),
                ("X-Amz-SignedHeaders", signed),
                ("X-Amz-Date", date),
            )
            if param is None
        ]
        raise IncompleteSignatureException(
            f"{' '.join(missing)} Re-examine the query-string parameters."
        )
    amz_date, timestamp = _timestamp(date, from_date_header=False)
    return SignedRequest(
        credential=credential,
        signed_headers=_signed_headers(signed),
        signature=signature,
        amz_date=amz_date,
        timestamp=timestamp,
        token=params.get("X-Amz-Security-Token"),
        expires=_expires(params.get("X-Amz-Expires")),
        presigned=True,
    )


def _signed_headers(value: str) -> list[str]:
    names = sorted(value.lower().split(";"))
    if "host" not in names and ":authority" not in names:
        raise InvalidSignatureException(_HOST_NOT_SIGNED)
    return names


def _timestamp(value: str, from_date_header: bool) -> tuple[str, float]:
    """Return (ISO 8601 basic form, epoch seconds) of a request's date."""
    epoch = parse_amz_date(value)
    if epoch is not None:
        return value, epoch
    if from_date_header:
        # botocore sends an RFC 1123 ``Date`` header when the caller set one; the string to
        # sign then carries the same instant in ISO 8601 basic format.
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:  # "-0000", as botocore writes it, means UTC
                parsed = parsed.replace(tzinfo=datetime.UTC)
            epoch = parsed.timestamp()
            return format_amz_date(epoch), float(int(epoch))
    raise IncompleteSignatureException(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _expires(value: str | None) -> int | None:
    # AWS's own words for a bad X-Amz-Expires (S3 states them; other services follow suit).
    if value is None:
        return None
    digits = value[1:] if value.startswith("-") else value
    if not (digits.isascii() and digits.isdigit()):
        raise IncompleteSignatureException("X-Amz-Expires should be a number")
    expires = int(value)
    if expires < 0:
        raise IncompleteSignatureException("X-Amz-Expires must be non-negative")
    if expires > _WEEK:
        raise IncompleteSignatureException(
            f"X-Amz-Expires must be less than a week (in seconds) that is {_WEEK}"
        )
    return expires
