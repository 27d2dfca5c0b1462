"""The aiohttp application: one POST handler for the AWS JSON 1.1 protocol, plus health and STS.

The hot path is one handler with no middlewares: read the body, verify SigV4, dispatch through
the router (the same one the embedded client uses), answer. Every failure is answered the way
AWS answers it; anything unexpected becomes KMSInternalException (traceback logged only).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from kms_actors.auth import SigV4Verifier, Verified
from kms_actors.domain.identifiers import new_request_id
from kms_actors.domain.principal import Caller
from kms_actors.errors import (
    InvalidSignatureException,
    KmsError,
    KMSInternalException,
    RequestEntityTooLargeException,
    SerializationException,
    UnknownOperationException,
)
from kms_actors.http import _cloudtrail as cloudtrail
from kms_actors.http import _sts as sts
from kms_actors.http._errors import JSON_11, error_body
from kms_actors.ops import Router

log = logging.getLogger("kms_actors.http")

ROUTER = web.AppKey("router", Router)
VERIFIER = web.AppKey("verifier", SigV4Verifier)
STATUS = web.AppKey("status", dict[str, Any])

_TARGET_PREFIX = "TrentService."


def _json_response(body: bytes, request_id: str, status: int = 200) -> web.Response:
    return web.Response(
        body=body,
        status=status,
        headers={"Content-Type": JSON_11, "x-amzn-RequestId": request_id},
    )


def _error_response(error: KmsError, request_id: str) -> web.Response:
    return _json_response(error_body(error), request_id, error.status)


def _verify(request: web.Request, verifier: SigV4Verifier, body: bytes) -> Verified:
    # The raw request target as sent (no yarl URL object on the hot path).
    path, _, query = request.raw_path.partition("?")
    return verifier.verify(
        method=request.method, path=path, query=query, headers=request.headers, body=body
    )


def _caller(request: web.Request, verified: Verified) -> Caller:
    identity = verified.identity
    return Caller(
        account_id=identity.account_id,
        region=verified.region,
        arn=identity.arn,
        access_key_id=identity.access_key_id,
        source_ip=request.remote or "",
        user_agent=request.headers.get("User-Agent", ""),
        user_id=identity.user_id,
        role_arn=identity.role_arn,
        identity_policies=identity.policies,
    )


async def handle_post(request: web.Request) -> web.StreamResponse:
    """Answer one AWS API request (KMS JSON 1.1, or STS query protocol without a target)."""
    request_id = new_request_id()
    try:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise RequestEntityTooLargeException(
                "Request body exceeds the maximum allowed size."
            ) from None
        target = request.headers.get("X-Amz-Target")
        if target is None:
            return await _handle_sts(request, body, request_id)
        verified = _verify(request, request.app[VERIFIER], body)
        if target.startswith(cloudtrail.TARGET_PREFIX):
            operation = target[len(cloudtrail.TARGET_PREFIX) :]
            audit = request.app[ROUTER].audit
            return await cloudtrail.handle(audit, operation, body, verified, request_id)
        if not target.startswith(_TARGET_PREFIX):
            raise UnknownOperationException()
        if verified.service != "kms":
            raise InvalidSignatureException(
                f"Credential should be scoped to correct service: 'kms'. "
                f"Received: '{verified.service}'"
            )
        operation = target[len(_TARGET_PREFIX) :]
        router = request.app[ROUTER]
        answer = await router.call_json(
            operation, body, _caller(request, verified), request_id=request_id
        )
        return _json_response(answer, request_id)
    except KmsError as error:
        return _error_response(error, request_id)
    except Exception:
        log.exception("request %s failed unexpectedly", request_id)
        return _error_response(KMSInternalException(), request_id)


async def _handle_sts(request: web.Request, body: bytes, request_id: str) -> web.Response:
    form = sts.form_of(body) if body else None
    if form is None or form.get("Action") is None:
        # Neither a KMS target nor an STS action: AWS answers with this.
        raise UnknownOperationException()
    headers = {"Content-Type": sts.XML, "x-amzn-RequestId": request_id}
    verifier = request.app[VERIFIER]
    try:
        verified = _verify(request, verifier, body)
        if verified.service != "sts":
            raise InvalidSignatureException(
                f"Credential should be scoped to correct service: 'sts'. "
                f"Received: '{verified.service}'"
            )
    except KmsError as error:  # not authenticated: answered, not audited (as for KMS)
        failure = sts.sts_error_of(error)
        return web.Response(
            body=sts.error_body(failure, request_id), status=failure.status, headers=headers
        )
    router = request.app[ROUTER]
    status, answer = await sts.answer(
        router.audit,
        verifier.identities,
        _caller(request, verified),
        verified.identity,
        form,
        now=router.services.clock.now(),
        request_id=request_id,
    )
    return web.Response(body=answer, status=status, headers=headers)


async def handle_health(request: web.Request) -> web.Response:
    """Answer 200 with a small JSON status once the service is ready."""
    return web.json_response(request.app[STATUS])


async def handle_other(request: web.Request) -> web.Response:
    """Answer any other method or path as AWS does for a request it cannot route."""
    request_id = new_request_id()
    if request.method == "GET" and request.path == "/":
        return _error_response(SerializationException("Only POST is supported."), request_id)
    return _error_response(UnknownOperationException(), request_id)


def build_app(
    router: Router, verifier: SigV4Verifier, *, max_body_bytes: int, status: dict[str, Any]
) -> web.Application:
    """Return the aiohttp application."""
    app = web.Application(client_max_size=max_body_bytes, handler_args={"access_log": None})
    app[ROUTER] = router
    app[VERIFIER] = verifier
    app[STATUS] = status
    app.router.add_post("/", handle_post)
    app.router.add_get("/health", handle_health)
    app.router.add_route("*", "/{tail:.*}", handle_other)
    return app
