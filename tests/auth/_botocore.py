"""Requests signed by botocore itself, as the HTTP layer would hand them to the verifier."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from unittest import mock
from urllib.parse import urlsplit

from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kms_actors.auth import Identity, IdentityStore, SigV4Verifier, Verified

ACCOUNT = "111122223333"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
KMS_URL = "https://kms.us-east-1.amazonaws.com/"
STS_URL = "https://sts.amazonaws.com/"
# 2026-11-29T01:00:00Z: signing time of every request unless a test says otherwise.
SIGNED_AT = datetime.datetime(2026, 11, 29, 1, 0, 0, tzinfo=datetime.UTC)
NOW = SIGNED_AT.timestamp()
KMS_BODY = b'{"KeyId": "alias/orders", "Plaintext": "aGVsbG8="}'
KMS_HEADERS = {
    "X-Amz-Target": "TrentService.Encrypt",
    "Content-Type": "application/x-amz-json-1.1",
    "User-Agent": "Boto3/1.35.0 md/Botocore#1.35.0 Botocore/1.35.0",
}
STS_FORM = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}
STS_HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def user(**changes: Any) -> Identity:
    """Return the IAM user the tests sign as, with ``changes`` applied."""
    fields: dict[str, Any] = {
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
        "account_id": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
    }
    fields.update(changes)
    return Identity(**fields)


def verifier(*identities: Identity, now: float = NOW, dev_mode: bool = False) -> SigV4Verifier:
    """Return a verifier over ``identities`` (the test user by default) at a fixed clock."""
    store = IdentityStore(identities or (user(),), dev_mode=dev_mode)
    return SigV4Verifier(store, now=lambda: now)


class Sent(NamedTuple):
    """A request as it arrives: method, raw path and query, headers (with Host), body."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def verify_with(self, checker: SigV4Verifier) -> Verified:
        """Verify this request."""
        return checker.verify(
            method=self.method,
            path=self.path,
            query=self.query,
            headers=self.headers,
            body=self.body,
        )

    def replace_header(self, name: str, change: Callable[[str], str]) -> Sent:
        """Return a copy with header ``name`` changed."""
        headers = dict(self.headers)
        headers[name] = change(headers[name])
        return self._replace(headers=headers)


def signed(
    *,
    url: str = KMS_URL,
    method: str = "POST",
    data: bytes | Mapping[str, str] = KMS_BODY,
    headers: Mapping[str, str] = KMS_HEADERS,
    access_key: str = ACCESS_KEY,
    secret: str = SECRET,
    token: str | None = None,
    region: str = REGION,
    service: str = "kms",
    at: datetime.datetime = SIGNED_AT,
    presign_expires: int | None = None,
    unsigned_payload: bool = False,
    unsigned_query: bool = False,
) -> Sent:
    """Return a request signed by botocore (header form, or presigned with an expiry).

    ``unsigned_payload`` signs the header form with ``UNSIGNED-PAYLOAD``; ``unsigned_query``
    presigns as S3 does (``UNSIGNED-PAYLOAD``, the path left as is).
    """
    credentials = Credentials(access_key, secret, token)
    request = AWSRequest(method=method, url=url, data=data, headers=dict(headers))
    if unsigned_payload:
        request.context["payload_signing_enabled"] = False
    signer: SigV4Auth
    if presign_expires is None:
        signer = SigV4Auth(credentials, service, region)
    else:
        query_signer = S3SigV4QueryAuth if unsigned_query else SigV4QueryAuth
        signer = query_signer(credentials, service, region, expires=presign_expires)
    naive = at.astimezone(datetime.UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=naive):
        signer.add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    sent_headers = {str(k): str(v) for k, v in prepared.headers.items()}
    sent_headers.setdefault("Host", parts.netloc)
    body = prepared.body or b""
    return Sent(
        method,
        parts.path,
        parts.query,
        sent_headers,
        body.encode() if isinstance(body, str) else bytes(body),
    )
