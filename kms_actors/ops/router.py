"""The router: the one entry to the service for the HTTP layer and the embedded client.

It has no state to protect, so it runs in the caller's task rather than behind a mailbox of
its own (a mailbox would only add a hop); the actors it dispatches to serialize what must be
serialized. One dispatch table, one path, so the HTTP API and the embedded client can never
disagree. Every request that names a KMS operation, successful, refused or invalid, leaves
exactly one audit event, committed before the answer by default (fail closed). In that
durable mode the hot crypto operations are answered by their key actor through a
``DeferredAudit`` (``_deferred``), which records the event and holds the answer until it is
committed, so the caller waits once; the router records every other request itself, after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from kms_actors.audit import AuditLog
from kms_actors.domain.identifiers import new_request_id
from kms_actors.domain.principal import Caller
from kms_actors.errors import (
    KmsError,
    KMSInternalException,
    UnknownOperationException,
    UnsupportedOperationException,
)
from kms_actors.keys.registry import REQUEST_AUDIT, RequestAudit
from kms_actors.ops import aliases, crypto, grants, keys, policies, tags
from kms_actors.ops._context import Handler, Services
from kms_actors.ops._deferred import FUSED_OPERATIONS, DeferredAudit, capture
from kms_actors.wire import OPERATIONS, decode_json_request, decode_request, to_json

log = logging.getLogger("kms_actors.ops")

HANDLERS: Mapping[str, Handler] = {
    **keys.HANDLERS,
    **crypto.HANDLERS,
    **aliases.HANDLERS,
    **tags.HANDLERS,
    **policies.HANDLERS,
    **grants.HANDLERS,
}

_JSON = msgspec.json.Decoder()


class Router:
    """Dispatches a request to its operation handler, and audits it."""

    def __init__(self, services: Services, audit: AuditLog | None = None) -> None:
        self.services = services
        self.audit = audit
        self._table: Mapping[str, Handler] = HANDLERS

    def supports(self, operation: str) -> bool:
        """Say whether ``operation`` is implemented."""
        return operation in self._table

    def add_handlers(self, handlers: Mapping[str, Handler]) -> None:
        """Add operation handlers (operations built outside this package, e.g. audit's)."""
        self._table = {**self._table, **handlers}

    async def call(self, operation: str, request: Any, caller: Caller) -> Any:
        """Run one decoded operation for ``caller`` (not audited: the public entries are).

        Raises:
            KmsError: The AWS error for the request; anything unexpected becomes
                KMSInternalException (the traceback is logged, never returned).
        """
        handler = self._table.get(operation)
        if handler is None:
            raise _unsupported(operation)
        try:
            return await handler(self.services, caller, request)
        except KmsError:
            raise
        except Exception:
            log.exception("operation %s failed unexpectedly", operation)
            raise KMSInternalException() from None

    async def call_params(
        self,
        operation: str,
        params: Mapping[str, Any],
        caller: Caller,
        *,
        blobs_are_base64: bool,
        request_id: str | None = None,
    ) -> Any:
        """Validate builtins ``params`` against the model, run the operation, audit it.

        Raises:
            ValidationException, SerializationException: The request does not fit the model.
            KmsError: As ``call``.
        """

        def decode() -> Any:
            return decode_request(operation, params, blobs_are_base64=blobs_are_base64)

        return await self._audited(operation, caller, request_id, decode, lambda _r: params)

    async def call_json(
        self, operation: str, body: bytes, caller: Caller, *, request_id: str | None = None
    ) -> bytes:
        """Run an operation from an AWS JSON 1.1 body and return the JSON response body.

        Raises:
            UnknownOperationException, UnsupportedOperationException: Not an operation we run.
            SerializationException, ValidationException: The body does not fit the model.
            KmsError: As ``call``.
        """

        def decode() -> Any:
            return decode_json_request(operation, body)

        response = await self._audited(operation, caller, request_id, decode, _json_params(body))
        return to_json(response)

    async def _audited(
        self,
        operation: str,
        caller: Caller,
        request_id: str | None,
        decode: Callable[[], Any],
        params_of: Callable[[Any], Mapping[str, Any] | msgspec.Struct],
    ) -> Any:
        audit = self.audit
        if audit is None or operation not in OPERATIONS:
            if operation not in self._table:
                raise _unsupported(operation)
            return await self.call(operation, decode(), caller)
        audit.ensure_healthy()  # fail closed: never run a request that cannot be recorded
        request_id = request_id or new_request_id()
        request: Any = None
        response: Any = None
        error: KmsError | None = None
        deferred: DeferredAudit | None = None
        tracked: RequestAudit | None = None
        token = None
        try:
            if operation not in self._table:
                raise _unsupported(operation)
            request = decode()
            if operation in FUSED_OPERATIONS and audit.deferrable:
                # The key actor's answer goes to it (``ask_key``): see ``_deferred``.
                tracked = deferred = DeferredAudit(
                    audit, self.services.clock, operation, caller, params_of(request), request_id
                )
            else:
                tracked = RequestAudit()
            token = REQUEST_AUDIT.set(tracked)
            response = await self.call(operation, request, caller)
            return response
        except KmsError as failure:
            error = failure
            raise
        finally:
            if token is not None:
                REQUEST_AUDIT.reset(token)
            if deferred is None or deferred.claim():
                # Only the redacted pieces are taken here; the writer builds the event.
                call = capture(
                    operation,
                    caller,
                    params_of(request),
                    event_time=self.services.clock.now(),
                    request_id=request_id,
                    resources=tracked.resources if tracked is not None else [],
                    response=response,
                    error=error,
                )
                await audit.record(call)


def _json_params(body: bytes) -> Callable[[Any], Mapping[str, Any] | msgspec.Struct]:
    """Return the audit view of a JSON request: the decoded request, else the raw JSON."""

    def params_of(request: Any) -> Mapping[str, Any] | msgspec.Struct:
        if request is not None:
            decoded: msgspec.Struct = request
            return decoded
        try:
            document = _JSON.decode(body) if body else {}
        except msgspec.DecodeError:
            return {}
        return document if isinstance(document, dict) else {}

    return params_of


def _unsupported(operation: str) -> KmsError:
    if operation in OPERATIONS:
        return UnsupportedOperationException(f"{operation} is not supported by kms_actors yet.")
    return UnknownOperationException()
