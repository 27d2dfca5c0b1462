"""Bench-only changes to the service, to see where durable audit's cost goes.

``bench/bench_audit_cost.py`` puts this directory on ``PYTHONPATH`` and names a variant in
``PYTHON_KMS_ACTORS_BENCH_VARIANT``; Python imports this module at the start of every process
it starts then (the service, and the audit writer process it starts: that one gets a minimal
environment, but keeps the ``PYTHON*`` variables). Nothing in the package
knows about it. The variants:

- ``null-store``: the audit writer stores nothing (and says it did): the pipe, the writer's
  decoding, composing and hashing, and the waits for its reports, without SQLite or fsync.
- ``no-wait``: events go to the writer as usual, but the hot operations' answers are released
  at once instead of when their event is committed.
- ``no-io``: the hot operations' events are captured but neither sent nor waited for.
- ``no-event``: the hot operations go the audited way (request bookkeeping, the deferred
  answer) but no event is captured, sent or waited for: what audit costs before any event.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

VARIABLE = "PYTHON_KMS_ACTORS_BENCH_VARIANT"
VARIANTS = ("null-store", "no-wait", "no-io", "no-event")


def apply(variant: str) -> None:
    """Change this process as ``variant`` says (see the module docstring)."""
    if variant == "null-store":
        from kms_actors.store import AuditStore

        async def nothing(self: AuditStore, *args: Any, **kwargs: Any) -> None:
            return None

        AuditStore.append_rows = nothing  # type: ignore[method-assign]
        AuditStore.add_checkpoint = nothing  # type: ignore[method-assign]
    elif variant in ("no-wait", "no-io"):
        from kms_actors.audit import AuditLog, CallCapture

        send = variant == "no-wait"

        def record_deferred(
            self: AuditLog, item: CallCapture, deliver: Callable[[bool], None]
        ) -> None:
            if send:
                self.record_nowait(item)
            deliver(True)

        AuditLog.record_deferred = record_deferred  # type: ignore[method-assign]
    elif variant == "no-event":
        from kms_actors.errors import KmsError
        from kms_actors.ops import _deferred
        from kms_actors.runtime import Reply

        def answer(
            self: _deferred.DeferredAudit,
            reply: Reply[Any],
            result: Any,
            error: KmsError | None,
        ) -> None:
            self.recorded = True
            if error is None:
                reply.set(result)
            else:
                reply.fail(error)

        _deferred.DeferredAudit.__call__ = answer  # type: ignore[method-assign]
    elif variant:
        raise ValueError(f"unknown bench variant {variant!r}; known: {', '.join(VARIANTS)}")


apply(os.environ.get(VARIABLE, ""))
