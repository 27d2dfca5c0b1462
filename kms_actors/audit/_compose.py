"""The second half of an event: from what was captured to the bytes and columns it stores.

``Composer.compose(item)`` takes a ``CallCapture`` (or a ready ``AuditEvent``) and returns its
CloudTrail JSON, the queryable columns and the names it is found under by resource (as the
JSON array the store keeps): all the chain needs to place it. ``AuditWriter`` runs it.
It remembers what repeats from one event to the next (the caller's ``userIdentity`` and its
columns, the ``resources`` entries of a set of ARNs, the ``eventTime`` of the current second),
so an event costs one struct, one encoding and a few dictionary lookups. The result is
exactly what ``encode_event(api_call_event(...))`` and ``unchained_record`` give for the same
request: all go through ``call_event`` and the ``_chain`` column helpers.
"""

from __future__ import annotations

import math

import msgspec

from kms_actors.audit._chain import (
    encode_event,
    identity_columns,
    resource_columns,
    unchained_record,
)
from kms_actors.audit._event import (
    AuditEvent,
    CallCapture,
    Resource,
    UserIdentity,
    call_event,
    format_event_time,
    identity_of,
    new_event_id,
    resources_of,
)

# One composed event: its JSON, the audit_records columns from event_time to error_code (the
# store's column order, without seq and the hashes), and its resource names as a JSON array.
# Blobs are bytearrays and flags ints: sqlite3 binds those several times faster than bytes and
# bools (which it first offers to adapters), and it binds them on its thread, holding the GIL.
Composed = tuple[bytearray, tuple[object, ...], str | None]

_IdentityKey = tuple[str, str, str, str]
_Who = tuple[UserIdentity, str | None, str | None, str | None]
_Where = tuple[tuple[Resource, ...], str | None, str | None]

# Bounds for the caches: past them a cache starts over (callers and key sets are few in
# practice, but an unbounded map keyed by request data would be a memory leak).
_CACHE_LIMIT = 4096

# The same encoder settings as ``encode_event``, writing into a bytearray (see ``Composed``).
_encode_into = msgspec.json.Encoder().encode_into


class Composer:
    """Builds events, with the caches described above (one per audit log)."""

    __slots__ = ("_identities", "_resources", "_second", "_stamp")

    def __init__(self) -> None:
        self._identities: dict[_IdentityKey, _Who] = {}
        self._resources: dict[tuple[str, ...], _Where] = {}
        self._second: int | None = None
        self._stamp = ""

    def compose(self, item: CallCapture | AuditEvent, event_id: str = "") -> Composed:
        """Return the JSON, columns and resource names of one event.

        A captured request's event is named ``event_id``, else its own, else a fresh id.
        """
        if isinstance(item, AuditEvent):
            return _compose_event(item)
        key = (item.arn, item.account_id, item.access_key_id, item.principal_id)
        who = self._identities.get(key) or self._identity(key)
        where = self._resources.get(item.resources) or self._where(item.resources)
        second = math.floor(item.event_time)
        if second != self._second:
            self._second, self._stamp = second, format_event_time(second)
        event_id = event_id or item.event_id or new_event_id()
        event = call_event(item, who[0], where[0], self._stamp, event_id)
        event_json = bytearray()
        _encode_into(event, event_json)
        columns = (
            float(second),
            event_json,
            item.recipient_account_id,
            item.region,
            item.operation,
            event_id,
            int(event.read_only),
            where[1],
            who[1],
            who[2],
            who[3],
            item.error_code,
        )
        return event_json, columns, where[2]

    def _identity(self, key: _IdentityKey) -> _Who:
        identity = identity_of(*key)
        who = (identity, *identity_columns(identity))
        if len(self._identities) >= _CACHE_LIMIT:
            self._identities.clear()
        self._identities[key] = who
        return who

    def _where(self, arns: tuple[str, ...]) -> _Where:
        resources = resources_of(arns)
        key_arn, names = resource_columns(resources)
        where = (resources, key_arn, _names_json(names))
        if len(self._resources) >= _CACHE_LIMIT:
            self._resources.clear()
        self._resources[arns] = where
        return where


def _names_json(names: tuple[str, ...]) -> str | None:
    return msgspec.json.encode(names).decode() if names else None


def _compose_event(event: AuditEvent) -> Composed:
    record = unchained_record(event, encode_event(event))
    event_json = bytearray(record.event_json)
    columns = (
        record.event_time,
        event_json,
        record.account_id,
        record.region,
        record.event_name,
        record.event_id,
        int(record.read_only),
        record.key_arn,
        record.principal_arn,
        record.access_key_id,
        record.username,
        record.error_code,
    )
    return event_json, columns, _names_json(record.resources)
