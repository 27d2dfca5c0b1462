"""Key usage operations answered from the audit log: GetKeyLastUsage.

Unlike the other operation groups these handlers need the audit log, which the router does not
hand to handlers, so the dispatch table is built by ``handlers(audit)`` and added to the
router by the composition root (``router.add_handlers(usage.handlers(audit))``).
"""

from __future__ import annotations

from msgspec import UNSET

from kms_actors.audit import AuditLog, last_usage
from kms_actors.domain.principal import Caller
from kms_actors.domain.records import KeyRecord
from kms_actors.keys import messages as m
from kms_actors.ops._context import Handler, Services, auth
from kms_actors.wire import shapes as w


async def get_key_last_usage(
    audit: AuditLog, s: Services, caller: Caller, req: w.GetKeyLastUsageRequest
) -> w.GetKeyLastUsageResponse:
    """GetKeyLastUsage: the newest successful cryptographic operation with the key.

    Counts what the audit log holds since its tracking start (its creation, or the last
    prune's cut): failed and denied requests do not count; ReEncrypt counts for both keys.
    ``KeyLastUsage`` is empty when the key has not been used since then. With asynchronous
    audit logging the events queued so far are written first, so the caller's own earlier
    requests count.

    Raises:
        NotFoundException: No such key or alias in the caller's account and Region (no
            cross-account use, as AWS).
        AccessDeniedException: The key policy and identity policies do not allow
            kms:GetKeyLastUsage.
        KMSInternalException: The audit log cannot be written or read.
    """
    key: KeyRecord = await s.registry.ask(
        caller, req.key_id, m.Describe(), auth=auth(caller, "GetKeyLastUsage")
    )
    if not audit.durable:
        await audit.flush()
    usage = await last_usage(audit.store, key.arn)
    return w.GetKeyLastUsageResponse(
        key_id=key.arn,
        key_last_usage=w.KeyLastUsageData(
            operation=usage.operation if usage.operation is not None else UNSET,
            timestamp=usage.timestamp if usage.timestamp is not None else UNSET,
            cloud_trail_event_id=(
                usage.cloud_trail_event_id if usage.cloud_trail_event_id is not None else UNSET
            ),
            kms_request_id=usage.kms_request_id if usage.kms_request_id is not None else UNSET,
        ),
        # AWS: "the date from which KMS began recording ... or the date the KMS key was
        # created, whichever is later".
        tracking_start_date=max(usage.tracking_start_date, key.creation_date),
        key_creation_date=key.creation_date,
    )


def handlers(audit: AuditLog) -> dict[str, Handler]:
    """Return this group's dispatch table, its handlers bound to ``audit``."""

    async def get_key_last_usage_handler(
        s: Services, caller: Caller, req: w.GetKeyLastUsageRequest
    ) -> w.GetKeyLastUsageResponse:
        return await get_key_last_usage(audit, s, caller, req)

    return {"GetKeyLastUsage": get_key_last_usage_handler}
