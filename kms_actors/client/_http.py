"""The async HTTP client: the embedded client's methods, sent to a KMS endpoint over HTTP.

Switching an application between in-process and remote is one line: ``open_kms(...)`` or
``open_kms_http(...)``. Requests are signed with AWS Signature Version 4.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import aiohttp
import msgspec

from kms_actors.auth import sign_headers
from kms_actors.client._methods import KmsMethods
from kms_actors.errors import KmsError, KMSInternalException, by_code
from kms_actors.wire import response_type, to_python

JSON_11: Final = "application/x-amz-json-1.1"
_ENCODER: Final = msgspec.json.Encoder()
_ERROR: Final = msgspec.json.Decoder(dict[str, Any])
_unknown_codes: dict[str, type[KmsError]] = {}


def error_for(code: str, message: str) -> KmsError:
    """Return the KmsError for an AWS error code (a new subclass for codes we do not know)."""
    code = code.rpartition("#")[2].partition(":")[0]
    cls = by_code(code) or _unknown_codes.get(code)
    if cls is None:
        cls = _unknown_codes.setdefault(code, type(code, (KmsError,), {}))
    return cls(message)


class KmsHttpClient(KmsMethods):
    """boto3-shaped async KMS client over HTTP (methods as the embedded client)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint_url: str,
        *,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
    ) -> None:
        self._session = session
        self.endpoint_url = endpoint_url.rstrip("/") + "/"
        self.region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._session_token = session_token

    async def _call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        body = _ENCODER.encode(dict(params))
        headers = {"Content-Type": JSON_11, "X-Amz-Target": f"TrentService.{operation}"}
        headers.update(
            sign_headers(
                method="POST",
                url=self.endpoint_url,
                headers=headers,
                body=body,
                access_key_id=self._access_key_id,
                secret_access_key=self._secret_access_key,
                region=self.region,
                service="kms",
                session_token=self._session_token,
            )
        )
        async with self._session.post(self.endpoint_url, data=body, headers=headers) as reply:
            raw = await reply.read()
            request_id = reply.headers.get("x-amzn-RequestId", "")
            status = reply.status
            reply_headers = dict(reply.headers)
        if status != 200:
            error = _decode_error(raw, status)
            error.request_id = request_id
            raise error
        result = to_python(
            operation, msgspec.json.decode(raw or b"{}", type=response_type(operation))
        )
        result["ResponseMetadata"] = {
            "RequestId": request_id,
            "HTTPStatusCode": status,
            "HTTPHeaders": reply_headers,
            "RetryAttempts": 0,
        }
        return result


def _decode_error(raw: bytes, status: int) -> KmsError:
    try:
        document = _ERROR.decode(raw)
    except msgspec.DecodeError:
        return KMSInternalException(f"HTTP {status} with a body that is not JSON")
    code = str(document.get("__type") or document.get("code") or "KMSInternalException")
    message = str(document.get("message") or document.get("Message") or "")
    return error_for(code, message)


@contextlib.asynccontextmanager
async def open_kms_http(
    endpoint_url: str,
    *,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
) -> AsyncIterator[KmsHttpClient]:
    """Open an HTTP client for ``endpoint_url``; credentials default to the AWS_* variables."""
    env = os.environ
    key_id = access_key_id or env.get("AWS_ACCESS_KEY_ID")
    secret = secret_access_key or env.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        raise ValueError("no credentials: pass access_key_id/secret_access_key or set AWS_*")
    async with aiohttp.ClientSession() as session:
        yield KmsHttpClient(
            session,
            endpoint_url,
            region=region or env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
            access_key_id=key_id,
            secret_access_key=secret,
            session_token=session_token or env.get("AWS_SESSION_TOKEN"),
        )
