"""The hash chain and its checkpoints: the rules the writer follows and the verifier checks.

Record ``n`` stores the exact bytes of its event JSON and::

    hash_n = SHA-256(hash_{n-1} || event_json_n),   hash_0 = 32 zero bytes (GENESIS_HASH)

so editing, deleting, inserting or reordering a record breaks the links after it. A
checkpoint vouches for ``(seq, hash)`` with an HMAC under the HSM's checkpoint key, over::

    b"kms-actors/v1/audit-checkpoint" || 0x00 || seq (8, big-endian) || hash (32)
        || created (IEEE 754 double, big-endian)

so rewriting the chain wholesale (recomputing every hash) is caught at the next checkpoint.
The prune anchor is signed the same way.
"""

from __future__ import annotations

import hashlib
import struct

import msgspec

from kms_actors.audit._event import (
    AuditEvent,
    Resource,
    UserIdentity,
    parse_event_time,
    username,
)
from kms_actors.hsm import CheckpointSigner
from kms_actors.store import AuditRecord, Checkpoint

_CHECKPOINT_DOMAIN = b"kms-actors/v1/audit-checkpoint\x00"

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(AuditEvent).decode


def encode_event(event: AuditEvent) -> bytes:
    """Return the event's CloudTrail JSON: the bytes that are stored and hashed."""
    return _encode(event)


def decode_event(event_json: bytes) -> AuditEvent:
    """Return the event stored as ``event_json``."""
    return _decode(event_json)


def chain_hash(prev_hash: bytes, event_json: bytes) -> bytes:
    """Return the hash of a record whose predecessor has ``prev_hash``."""
    return hashlib.sha256(prev_hash + event_json).digest()


def checkpoint_message(seq: int, record_hash: bytes, created: float) -> bytes:
    """Return the bytes a checkpoint's signature covers."""
    return _CHECKPOINT_DOMAIN + seq.to_bytes(8, "big") + record_hash + struct.pack(">d", created)


def sign_checkpoint(
    signer: CheckpointSigner, seq: int, record_hash: bytes, created: float
) -> Checkpoint:
    """Return a checkpoint vouching that record ``seq`` has ``record_hash``."""
    signature = signer.sign(checkpoint_message(seq, record_hash, created))
    return Checkpoint(seq=seq, hash=record_hash, signature=signature, created=created)


def checkpoint_valid(signer: CheckpointSigner, checkpoint: Checkpoint) -> bool:
    """Say whether the checkpoint's signature is genuine."""
    message = checkpoint_message(checkpoint.seq, checkpoint.hash, checkpoint.created)
    return signer.verify(message, checkpoint.signature)


def _short_name(arn: str) -> str | None:
    if ":key/" in arn:
        return arn.rsplit(":key/", 1)[1]
    if ":alias/" in arn:
        return "alias/" + arn.rsplit(":alias/", 1)[1]
    return None


def identity_columns(identity: UserIdentity) -> tuple[str | None, str | None, str | None]:
    """Return the ``principal_arn``, ``access_key_id`` and ``username`` columns of an identity."""
    return (
        identity.arn if isinstance(identity.arn, str) else None,
        identity.access_key_id if isinstance(identity.access_key_id, str) else None,
        username(identity),
    )


def resource_columns(resources: tuple[Resource, ...]) -> tuple[str | None, tuple[str, ...]]:
    """Return the ``key_arn`` column of an event's resources and the names it is found under.

    The names are the ARNs and their short forms (key id, ``alias/...``), without repeats.
    """
    arns = [resource.arn for resource in resources]
    names = [*arns, *(name for arn in arns if (name := _short_name(arn)) is not None)]
    key_arn = next((arn for arn in arns if ":key/" in arn), None)
    return key_arn, tuple(dict.fromkeys(names))


def unchained_record(event: AuditEvent, event_json: bytes) -> AuditRecord:
    """Return the record for an event, with its queryable columns, before it has a place.

    ``seq``, ``prev_hash`` and ``hash`` are placeholders until the writer chains it
    (``msgspec.structs.replace``). The columns are copies of event fields, so the verifier
    can check them against the hashed bytes.
    """
    principal_arn, access_key_id, name = identity_columns(event.user_identity)
    key_arn, names = resource_columns(event.resources)
    return AuditRecord(
        seq=0,
        event_time=parse_event_time(event.event_time),
        event_json=event_json,
        account_id=event.recipient_account_id,
        region=event.aws_region,
        event_name=event.event_name,
        event_id=event.event_id,
        read_only=event.read_only,
        key_arn=key_arn,
        principal_arn=principal_arn,
        access_key_id=access_key_id,
        username=name,
        error_code=event.error_code if isinstance(event.error_code, str) else None,
        prev_hash=b"",
        hash=b"",
        resources=names,
    )


def columns_match(record: AuditRecord) -> bool:
    """Say whether a stored record's queryable columns agree with its event bytes.

    Bytes that are not an event at all (malformed JSON, a bad time) agree with nothing.
    """
    try:
        expected = unchained_record(decode_event(record.event_json), record.event_json)
    except (msgspec.DecodeError, ValueError):
        return False
    stored = msgspec.structs.replace(record, seq=0, prev_hash=b"", hash=b"")
    return stored == msgspec.structs.replace(expected, resources=())
