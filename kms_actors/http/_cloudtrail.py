"""CloudTrail's LookupEvents on the same endpoint, answered from the audit store.

boto3's ``cloudtrail`` client pointed at our endpoint pages through the caller's KMS events.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from kms_actors.audit import AuditLog, LookupEventsError, lookup_events
from kms_actors.auth import Verified
from kms_actors.errors import SerializationException, UnknownOperationException

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


async def handle(
    audit: AuditLog | None, operation: str, body: bytes, verified: Verified, request_id: str
) -> web.Response:
    """Answer one CloudTrail request (only LookupEvents exists here)."""
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id}
    try:
        if operation != "LookupEvents" or audit is None:
            raise UnknownOperationException()
        try:
            request = _DECODER.decode(body) if body else {}
        except msgspec.DecodeError:
            raise SerializationException() from None
        if not isinstance(request, dict):
            raise SerializationException()
        answer = await lookup_events(
            audit.store,
            request,
            account_id=verified.identity.account_id,
            region=verified.region,
        )
        return web.Response(body=_ENCODER.encode(answer), headers=headers)
    except (LookupEventsError, UnknownOperationException, SerializationException) as error:
        document = {"__type": error.code, "message": error.message}
        return web.Response(body=_ENCODER.encode(document), status=error.status, headers=headers)
