"""The SigV4 verifier: from a raw request to the identity that signed it, or AWS's error.

Checks run in AWS's order, so a request with several faults gets the error AWS would give:
shape (missing token, incomplete signature), clock, credential scope, access key, session
token, signature.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Mapping
from typing import Final

import msgspec

from kms_actors.auth._identity import Identity, IdentityStore
from kms_actors.auth._request import (
    MISSING_AUTHENTICATION,
    SIGNATURE_MISMATCH,
    SignedRequest,
    from_authorization,
    from_query,
    query_auth_params,
)
from kms_actors.auth._sigv4 import (
    TERMINATOR,
    UNSIGNED_PAYLOAD,
    Signer,
    SigningKeys,
    canonical_path,
    canonical_query,
    canonical_request,
    format_amz_date,
    payload_hash,
    string_to_sign,
)
from kms_actors.errors import (
    ExpiredTokenException,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

SERVICES: Final = ("kms", "sts", "cloudtrail")
INVALID_CLIENT: Final = "The security token included in the request is invalid."
EXPIRED_CREDENTIALS: Final = "The security token included in the request is expired"
# botocore's rule for a region name (a DNS label).
_REGION: Final = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


class Verified(msgspec.Struct, frozen=True):
    """A request whose signature checked out: who signed it, for which region and service."""

    identity: Identity
    region: str
    service: str


class SigV4Verifier:
    """Verify AWS Signature Version 4 requests (Authorization header or presigned URL).

    ``now`` gives the wall clock in epoch seconds; a request's date may differ from it by
    ``max_skew_seconds`` either way. Signing keys are cached per (secret, date, region,
    service), so a request costs one HMAC and two SHA-256 passes.
    """

    def __init__(
        self,
        identities: IdentityStore,
        *,
        now: Callable[[], float] = time.time,
        max_skew_seconds: float = 900.0,
    ) -> None:
        self._identities = identities
        self._now = now
        self._skew = max_skew_seconds
        self._keys = SigningKeys()

    @property
    def identities(self) -> IdentityStore:
        """The store requests are verified against (AssumeRole adds its sessions to it)."""
        return self._identities

    def verify(
        self, *, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Verified:
        """Return who signed the request; ``path`` and ``query`` are raw, as sent.

        ``headers`` may be any mapping with names in any case (an aiohttp
        ``CIMultiDictProxy`` included; its repeated headers are joined as AWS joins them).

        Raises:
            MissingAuthenticationTokenException: no Authorization header, no presigned query.
            IncompleteSignatureException: the authentication is malformed.
            InvalidSignatureException: wrong signature, clock skew, expired presigned URL,
                credential scope mismatch.
            UnrecognizedClientException: unknown access key, missing or wrong session token.
            ExpiredTokenException: the temporary credentials have expired.
        """
        lowered = _lowercase(headers)
        authorization = lowered.get("authorization")
        params = query_auth_params(query) if query else None
        if authorization is not None:
            if params is not None:
                raise InvalidSignatureException(SIGNATURE_MISMATCH)  # two mechanisms at once
            signed = from_authorization(authorization, lowered)
        elif params is not None:
            signed = from_query(params)
        else:
            raise MissingAuthenticationTokenException(MISSING_AUTHENTICATION)
        dev_mode = self._identities.dev_mode
        now = self._now()
        if not dev_mode:
            self._check_clock(signed, now)
        access_key, date, region, service = _scope(signed, dev_mode)
        identity = self._identities.lookup(access_key)
        if identity is None:
            raise UnrecognizedClientException(INVALID_CLIENT)
        if not dev_mode:
            _check_token(identity, signed.token, now)
            signer = self._keys.get(identity.secret_access_key, date, region, service)
            scope = f"{date}/{region}/{service}/{TERMINATOR}"
            _check_signature(signed, signer, scope, method, path, query, lowered, body)
        return Verified(identity, region, service)

    def _check_clock(self, signed: SignedRequest, now: float) -> None:
        if signed.timestamp > now + self._skew:
            raise InvalidSignatureException(
                f"Signature not yet current: {signed.amz_date} is still later than "
                f"{format_amz_date(now + self._skew)} ({format_amz_date(now)} + "
                f"{_duration(self._skew)}.)"
            )
        window = self._skew if signed.expires is None else signed.expires
        if signed.timestamp < now - window:
            raise InvalidSignatureException(
                f"Signature expired: {signed.amz_date} is now earlier than "
                f"{format_amz_date(now - window)} ({format_amz_date(now)} - "
                f"{_duration(window)}.)"
            )


def _lowercase(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the headers with lowercase names; repeated headers joined by commas."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in lowered:
            # Trimmed before joining, as the canonical form trims each value (idempotent).
            lowered[key] = f"{' '.join(lowered[key].split())},{' '.join(value.split())}"
        else:
            lowered[key] = value
    return lowered


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60} min" if whole % 60 == 0 else f"{whole} sec"


def _scope(signed: SignedRequest, dev_mode: bool) -> tuple[str, str, str, str]:
    """Return (access key, date, region, service) of the credential, checked as AWS does."""
    parts = signed.credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{signed.credential}'"
        )
    access_key, date, region, service, terminator = parts
    problems = []
    if not _REGION.fullmatch(region):
        problems.append(f"Credential should be scoped to a valid region, not '{region}'.")
    if service not in SERVICES:
        problems.append(f"Credential should be scoped to correct service: '{SERVICES[0]}'.")
    if terminator != TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{terminator}'."
        )
    if date != signed.amz_date[:8] and not dev_mode:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{signed.amz_date[:8]}', from '{signed.amz_date}'."
        )
    if problems:
        raise InvalidSignatureException(" ".join(problems))
    return access_key, date, region, service


def _check_token(identity: Identity, token: str | None, now: float) -> None:
    expected = identity.session_token
    if expected is None:
        if token is not None:  # long-term keys carry no token
            raise UnrecognizedClientException(INVALID_CLIENT)
        return
    if token is None or not hmac.compare_digest(_ascii(token), _ascii(expected)):
        raise UnrecognizedClientException(INVALID_CLIENT)
    if identity.expiration is not None and now >= identity.expiration:
        raise ExpiredTokenException(EXPIRED_CREDENTIALS)


def _check_signature(
    signed: SignedRequest,
    signer: Signer,
    scope: str,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    # The signature must cover the body: a header-signed request claiming UNSIGNED-PAYLOAD
    # could otherwise be replayed with another body. Presigned URLs (bearer tokens by nature,
    # usually signed without the body) may use UNSIGNED-PAYLOAD.
    payloads = [payload_hash(body)]
    if signed.presigned:
        payloads.append(UNSIGNED_PAYLOAD)
    omit = "X-Amz-Signature" if signed.presigned else ""
    cpath, cquery = canonical_path(path), canonical_query(query, omit=omit)
    provided = _ascii(signed.signature)
    matched = False
    for payload in payloads:
        request = canonical_request(
            method, cpath, cquery, signed.signed_headers, headers.get, payload
        )
        expected = signer.sign(string_to_sign(signed.amz_date, scope, request))
        matched |= hmac.compare_digest(expected.encode(), provided)
    if not matched:
        raise InvalidSignatureException(SIGNATURE_MISMATCH)


def _ascii(value: str) -> bytes:
    # compare_digest takes str only when ASCII; bytes always work, whatever a client sent.
    return value.encode("utf-8", "surrogateescape")
