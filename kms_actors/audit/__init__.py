"""The audit trail: CloudTrail-shaped events, written durably, chained by hash, queryable.

How it is built:

- ``_event``: ``AuditEvent`` (CloudTrail's record for KMS) and its builders
  ``api_call_event`` / ``service_event``; on the request path ``capture_call`` keeps just the
  redacted pieces (``CallCapture``) and the log builds the event from them, with caches
  (``_compose``). ``_redact`` decides what of a request and its response may be recorded
  (never plaintext, ciphertext or key material).
- ``_chain``: the hash chain ``hash_n = SHA-256(hash_{n-1} || event_json_n)`` and checkpoints
  signed by the HSM (``kms_actors.hsm.checkpoint_signer``).
- ``_log``: ``open_audit_log`` / ``AuditLog``, what the service records through: it sends
  each event to the audit writer process (``_writer_process``, over ``_pipe``; ``_outbox``
  frames the events and keeps them until confirmed) and, by default, answers only once the
  writer reports it committed; failing closed; supervising the process (``_link``: restarted,
  and resent what it had not confirmed, if it dies; ``_process`` starts and stops it).
- ``_writer``: ``AuditWriter``, which that process runs (``open_audit_writer`` runs it
  in-process): group commit (one INSERT, one transaction and one fsync per batch), ``_head``
  chains each batch onto the head and decides its checkpoint.
- ``_verify``: ``verify_chain`` (first broken, missing or reordered record) and
  ``export_and_prune`` (JSON Lines export, then a prune that keeps the chain verifiable).
- ``_query``: ``lookup_events`` (CloudTrail LookupEvents), ``list_events`` (the CLI) and
  ``last_usage`` (GetKeyLastUsage).

The records live in their own SQLite file, ``<data_dir>/audit.sqlite3`` (``kms_actors.store``).
"""

from kms_actors.audit._chain import decode_event, encode_event
from kms_actors.audit._errors import (
    InvalidEventCategoryException,
    InvalidLookupAttributesException,
    InvalidMaxResultsException,
    InvalidNextTokenException,
    InvalidTimeRangeException,
    LookupEventsError,
)
from kms_actors.audit._event import (
    AuditEvent,
    CallCapture,
    Resource,
    UserIdentity,
    api_call_event,
    capture_call,
    capture_read_only,
    format_event_time,
    service_event,
)
from kms_actors.audit._log import AuditLog, open_audit_log
from kms_actors.audit._process import WriterProcessError
from kms_actors.audit._query import (
    TRACKED_OPERATIONS,
    KeyLastUsage,
    last_usage,
    list_events,
    lookup_events,
)
from kms_actors.audit._redact import READ_ONLY_OPERATIONS, redact_request, redact_response
from kms_actors.audit._sts_event import sts_event
from kms_actors.audit._verify import (
    ChainBroken,
    VerifyProblem,
    VerifyReport,
    export_and_prune,
    verify_chain,
)
from kms_actors.audit._writer import AuditWriter, open_audit_writer
from kms_actors.store import AuditRecord, AuditStore, open_audit_store

__all__ = [
    "READ_ONLY_OPERATIONS",
    "TRACKED_OPERATIONS",
    "AuditEvent",
    "AuditLog",
    "AuditRecord",
    "AuditStore",
    "AuditWriter",
    "CallCapture",
    "ChainBroken",
    "InvalidEventCategoryException",
    "InvalidLookupAttributesException",
    "InvalidMaxResultsException",
    "InvalidNextTokenException",
    "InvalidTimeRangeException",
    "KeyLastUsage",
    "LookupEventsError",
    "Resource",
    "UserIdentity",
    "VerifyProblem",
    "VerifyReport",
    "WriterProcessError",
    "api_call_event",
    "capture_call",
    "capture_read_only",
    "decode_event",
    "encode_event",
    "export_and_prune",
    "format_event_time",
    "last_usage",
    "list_events",
    "lookup_events",
    "open_audit_log",
    "open_audit_store",
    "open_audit_writer",
    "redact_request",
    "redact_response",
    "service_event",
    "sts_event",
    "verify_chain",
]
