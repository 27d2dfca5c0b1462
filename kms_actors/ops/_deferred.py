"""Answers held until their audit event is committed: one suspension per audited request.

In durable audit mode no answer may leave before its request's event is committed. Awaiting
the commit after the operation would suspend the caller a second time (it has already waited
for its key actor's reply), and a suspension costs about a third of an embedded Encrypt. So
for the crypto operations the key actor can finish by itself (``FUSED_OPERATIONS``: inline HSM
crypto, ``AdmitAnd``), the router hands the request a ``DeferredAudit`` and the actor gives its
answer to it instead of to the caller: the event is captured and queued right there
(``AuditLog.record_deferred``, without awaiting), and the log releases the answer when the
writer reports the event's frame committed, or fails it with KMSInternalException when the
event cannot be written (fail closed, as ``AuditLog.record``). The caller wakes once.

Exactly one event per request: whichever of the hook and the router comes first records it
(``recorded``). Errors before the key actor (validation, an unknown key), crashes, a stopping
actor and a request that ended early (cancelled) never reach the hook, and the router records
those as it records every other request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec

from kms_actors.audit import (
    READ_ONLY_OPERATIONS,
    AuditLog,
    CallCapture,
    capture_call,
    capture_read_only,
)
from kms_actors.domain.clock import Clock
from kms_actors.domain.principal import Caller
from kms_actors.errors import KmsError, KMSInternalException
from kms_actors.keys.registry import RequestAudit
from kms_actors.runtime import Reply

log = logging.getLogger("kms_actors.ops")

# The operations whose answer the key actor can give whole (see kms_actors.ops.crypto). All
# read-only: their events have no responseElements (``capture_read_only``; a test holds this).
FUSED_OPERATIONS = frozenset(
    {"Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext"}
)


def capture(
    operation: str,
    caller: Caller,
    params: Mapping[str, Any] | msgspec.Struct,
    *,
    event_time: float,
    request_id: str,
    resources: list[str],
    response: Any,
    error: KmsError | None,
) -> CallCapture:
    """Return the audit capture of a request's outcome (only the redacted pieces are taken)."""
    return capture_call(
        operation,
        caller,
        params,
        event_time=event_time,
        request_id=request_id,
        resources=resources,
        response=(
            msgspec.to_builtins(response)
            if response is not None and operation not in READ_ONLY_OPERATIONS
            else None
        ),
        error=error,
        principal_id=caller.user_id,
    )


class DeferredAudit(RequestAudit):
    """The audit of one fused request, and its ``Deferral``: records its event and holds its
    answer until the event is committed.

    It is the request's ``RequestAudit`` too (its ``deferral`` is itself): ``resources``, the
    key ARNs the request touched, is read when the actor answers.
    """

    __slots__ = (
        "_audit",
        "_caller",
        "_clock",
        "_error",
        "_operation",
        "_params",
        "_reply",
        "_request_id",
        "_result",
        "recorded",
    )

    def __init__(
        self,
        audit: AuditLog,
        clock: Clock,
        operation: str,
        caller: Caller,
        params: Mapping[str, Any] | msgspec.Struct,
        request_id: str,
    ) -> None:
        self.resources: list[str] = []
        self._audit = audit
        self._clock = clock
        self._operation = operation
        self._caller = caller
        self._params = params
        self._request_id = request_id
        self._reply: Reply[Any] | None = None
        self._result: Any = None
        self._error: KmsError | None = None
        self.recorded = False  # the request's event is queued (by this hook or the router)

    @property
    def deferral(self) -> DeferredAudit:  # type: ignore[override]
        """Itself (a property, not a reference to itself: that would be a reference cycle,
        which only the cyclic garbage collector frees, once per request)."""
        return self

    def claim(self) -> bool:
        """Take the recording over (the router, as the request ends); False if already taken."""
        if self.recorded:
            return False
        self.recorded = True
        return True

    def __call__(self, reply: Reply[Any], result: Any, error: KmsError | None) -> None:
        """Queue the request's event for the key actor's answer; answer once it is committed."""
        if self.recorded:
            # The request ended before its actor answered, and the router recorded it.
            _answer(reply, result, error)
            return
        self.recorded = True
        self._reply = reply
        self._result = result
        self._error = error
        try:
            call = capture_read_only(
                self._operation,
                self._caller,
                self._params,
                self._clock.now(),
                self._request_id,
                self.resources,
                error,
            )
            self._audit.record_deferred(call, self._deliver)
        except KmsError as failure:  # the log cannot be written now, or is closed
            reply.fail(failure)
        except Exception:
            log.exception("the audit event of %s could not be queued", self._operation)
            reply.fail(KMSInternalException())

    def _deliver(self, committed: bool) -> None:
        reply = self._reply
        if reply is None:
            return
        if committed:
            _answer(reply, self._result, self._error)
        else:
            reply.fail(KMSInternalException())


def _answer(reply: Reply[Any], result: Any, error: KmsError | None) -> None:
    if error is None:
        reply.set(result)
    else:
        reply.fail(error)
