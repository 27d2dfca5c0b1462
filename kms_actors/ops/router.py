"""The router: the one entry to the service for the HTTP layer and the embedded client.

It has no state to protect, so it runs in the caller's task rather than behind a mailbox of
its own (a mailbox would only add a hop); the actors it dispatches to serialize what must be
serialized. One dispatch table, one path, so the HTTP API and the embedded client can never
disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kms_actors.domain.principal import Caller
from kms_actors.errors import (
    KmsError,
    KMSInternalException,
    UnknownOperationException,
    UnsupportedOperationException,
)
from kms_actors.ops import aliases, crypto, keys, policies, tags
from kms_actors.ops._context import Handler, Services
from kms_actors.wire import OPERATIONS, decode_json_request, decode_request, to_json

log = logging.getLogger("kms_actors.ops")

HANDLERS: Mapping[str, Handler] = {
    **keys.HANDLERS,
    **crypto.HANDLERS,
    **aliases.HANDLERS,
    **tags.HANDLERS,
    **policies.HANDLERS,
}


class Router:
    """Dispatches a decoded request to its operation handler."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._table: Mapping[str, Handler] = HANDLERS

    def supports(self, operation: str) -> bool:
        """Say whether ``operation`` is implemented."""
        return operation in self._table

    async def call(self, operation: str, request: Any, caller: Caller) -> Any:
        """Run one operation for ``caller`` and return its response shape.

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
        self, operation: str, params: Mapping[str, Any], caller: Caller, *, blobs_are_base64: bool
    ) -> Any:
        """Validate builtins ``params`` against the model, then run the operation.

        Raises:
            ValidationException, SerializationException: The request does not fit the model.
            KmsError: As ``call``.
        """
        if operation not in self._table:
            raise _unsupported(operation)
        request = decode_request(operation, params, blobs_are_base64=blobs_are_base64)
        return await self.call(operation, request, caller)

    async def call_json(self, operation: str, body: bytes, caller: Caller) -> bytes:
        """Run an operation from an AWS JSON 1.1 body and return the JSON response body.

        Raises:
            UnknownOperationException, UnsupportedOperationException: Not an operation we run.
            SerializationException, ValidationException: The body does not fit the model.
            KmsError: As ``call``.
        """
        if operation not in self._table:
            raise _unsupported(operation)
        request = decode_json_request(operation, body)
        return to_json(await self.call(operation, request, caller))


def _unsupported(operation: str) -> KmsError:
    if operation in OPERATIONS:
        return UnsupportedOperationException(f"{operation} is not supported by kms_actors yet.")
    return UnknownOperationException()
