"""Reading the audit log: CloudTrail's LookupEvents, the CLI's listing, GetKeyLastUsage."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from kms_actors.audit._chain import decode_event
from kms_actors.audit._errors import (
    InvalidEventCategoryException,
    InvalidLookupAttributesException,
    InvalidMaxResultsException,
    InvalidNextTokenException,
    InvalidTimeRangeException,
)
from kms_actors.audit._event import EVENT_SOURCE, KEY_RESOURCE_TYPE
from kms_actors.audit._sts_event import ROLE_RESOURCE_TYPE, STS_ACTIONS, STS_EVENT_SOURCE
from kms_actors.store import AuditFilter, AuditRecord, AuditStore

MAX_RESULTS = 50

# The operations GetKeyLastUsage tracks (botocore's KeyLastUsageTrackingOperation).
TRACKED_OPERATIONS = (
    "Decrypt",
    "DeriveSharedSecret",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
    "Encapsulate",
    "Decapsulate",
)

# LookupEvents attribute -> the AuditFilter member it sets (the rest are handled apart).
_ATTRIBUTE_FILTERS = {
    "EventId": "event_id",
    "EventName": "event_name",
    "Username": "username",
    "AccessKeyId": "access_key_id",
    "ResourceName": "resource",
}
_OTHER_ATTRIBUTES = ("ReadOnly", "EventSource", "ResourceType")
_MAX_ATTRIBUTE_VALUE = 2000
# Records are told apart by source through their names: no KMS operation or service event
# shares a name with an STS action.
_STS_NAMES = frozenset(STS_ACTIONS)
# A filter the store cannot apply is applied to its pages of this many records.
_SCAN_PAGE = 200

# What the store cannot select is kept or dropped record by record (None: nothing to check).
_Keep = Callable[[AuditRecord], bool] | None


class KeyLastUsage(msgspec.Struct, frozen=True, kw_only=True):
    """The newest successful cryptographic use of a key, for GetKeyLastUsage.

    ``tracking_start_date`` is since when the audit history is complete (the audit store's
    creation, or the last prune's cut); the other members are None when the key has no
    successful use since then.
    """

    tracking_start_date: float
    operation: str | None = None
    timestamp: float | None = None
    cloud_trail_event_id: str | None = None
    kms_request_id: str | None = None

    def response(self, key_id: str, key_creation_date: float) -> dict[str, Any]:
        """Return GetKeyLastUsage's response (epoch seconds for dates)."""
        usage = {
            name: value
            for name, value in (
                ("Operation", self.operation),
                ("Timestamp", self.timestamp),
                ("CloudTrailEventId", self.cloud_trail_event_id),
                ("KmsRequestId", self.kms_request_id),
            )
            if value is not None
        }
        return {
            "KeyId": key_id,
            "KeyLastUsage": usage,
            "TrackingStartDate": max(self.tracking_start_date, key_creation_date),
            "KeyCreationDate": key_creation_date,
        }


def _timestamp(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise InvalidTimeRangeException(f"{name} is not a valid timestamp.")


def _max_results(value: object) -> int:
    if value is None:
        return MAX_RESULTS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RESULTS:
        raise InvalidMaxResultsException(f"MaxResults must be between 1 and {MAX_RESULTS}.")
    return value


def _attribute(attributes: object) -> tuple[str, str] | None:
    if attributes is None:
        return None
    if not isinstance(attributes, Sequence) or isinstance(attributes, str):
        raise InvalidLookupAttributesException("LookupAttributes must be a list.")
    if len(attributes) > 1:
        raise InvalidLookupAttributesException("You can specify only one lookup attribute.")
    if not attributes:
        return None
    attribute = attributes[0]
    key = attribute.get("AttributeKey") if isinstance(attribute, Mapping) else None
    value = attribute.get("AttributeValue") if isinstance(attribute, Mapping) else None
    if key not in _ATTRIBUTE_FILTERS and key not in _OTHER_ATTRIBUTES:
        raise InvalidLookupAttributesException(f"Invalid lookup attribute key: {key}.")
    if not isinstance(value, str) or not 1 <= len(value) <= _MAX_ATTRIBUTE_VALUE:
        raise InvalidLookupAttributesException(f"Invalid value for lookup attribute {key}.")
    return str(key), value


def _narrow(
    where: AuditFilter, attribute: tuple[str, str] | None
) -> tuple[AuditFilter, _Keep] | None:
    """Add the lookup attribute to the filter (and a check); None means nothing can match."""
    if attribute is None:
        return where, None
    key, value = attribute
    if key in _ATTRIBUTE_FILTERS:
        return msgspec.structs.replace(where, **{_ATTRIBUTE_FILTERS[key]: value}), None
    if key == "ReadOnly":
        if value not in ("true", "false"):
            raise InvalidLookupAttributesException("ReadOnly must be true or false.")
        return msgspec.structs.replace(where, read_only=value == "true"), None
    if key == "EventSource":
        if value == STS_EVENT_SOURCE:
            return msgspec.structs.replace(where, event_names=STS_ACTIONS), None
        return (where, _from_kms) if value == EVENT_SOURCE else None
    if value == KEY_RESOURCE_TYPE:
        return msgspec.structs.replace(where, has_key=True), None
    if value == ROLE_RESOURCE_TYPE:  # only AssumeRole names a role
        return msgspec.structs.replace(where, event_names=("AssumeRole",)), _names_role
    return None


def _from_kms(record: AuditRecord) -> bool:
    return record.event_name not in _STS_NAMES


def _names_role(record: AuditRecord) -> bool:
    resources = decode_event(record.event_json).resources
    return any(resource.type == ROLE_RESOURCE_TYPE for resource in resources)


async def _select(
    store: AuditStore, where: AuditFilter, keep: _Keep, *, limit: int, after: int | None
) -> list[AuditRecord]:
    """Return up to ``limit`` records newest first past ``after``: ``where``'s, and ``keep``'s."""
    if keep is None:
        return await store.query(where, limit=limit, after_seq=after)
    found: list[AuditRecord] = []
    while True:
        page = await store.query(where, limit=_SCAN_PAGE, after_seq=after)
        found.extend(record for record in page if keep(record))
        if len(found) >= limit or len(page) < _SCAN_PAGE:
            return found[:limit]
        after = page[-1].seq


def _fingerprint(where: AuditFilter, attribute: tuple[str, str] | None) -> str:
    query = [where.account_id, where.region, where.start, where.end, attribute]
    return hashlib.sha256(msgspec.json.encode(query)).hexdigest()[:16]


class _Token(msgspec.Struct, frozen=True):
    v: int
    after: int
    query: str


def _write_token(after: int, fingerprint: str) -> str:
    raw = msgspec.json.encode(_Token(1, after, fingerprint))
    return base64.urlsafe_b64encode(raw).decode()


def _read_token(token: object, fingerprint: str) -> int | None:
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(str(token).encode())
        decoded = msgspec.json.decode(raw, type=_Token)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidNextTokenException("Invalid NextToken.") from None
    if decoded.v != 1 or decoded.query != fingerprint:
        raise InvalidNextTokenException("NextToken does not belong to these parameters.")
    return decoded.after


def _lookup_event(record: AuditRecord) -> dict[str, Any]:
    event = decode_event(record.event_json)
    found: dict[str, Any] = {
        "EventId": record.event_id,
        "EventName": record.event_name,
        "ReadOnly": "true" if record.read_only else "false",
    }
    if record.access_key_id is not None:
        found["AccessKeyId"] = record.access_key_id
    found["EventTime"] = record.event_time
    found["EventSource"] = event.event_source
    if record.username is not None:
        found["Username"] = record.username
    found["Resources"] = [{"ResourceType": r.type, "ResourceName": r.arn} for r in event.resources]
    found["CloudTrailEvent"] = record.event_json.decode()
    return found


async def lookup_events(
    store: AuditStore, request: Mapping[str, Any], *, account_id: str, region: str | None = None
) -> dict[str, Any]:
    """Answer CloudTrail's LookupEvents for the caller's account (and region, if given).

    ``request`` is LookupEvents' request (``LookupAttributes`` with at most one attribute,
    ``StartTime``/``EndTime`` as epoch seconds or datetimes, ``MaxResults`` 1-50 (default 50),
    ``NextToken``, ``EventCategory``). Events come newest first; ``NextToken`` appears when
    more remain and is valid only with the same attributes and times. ``EventTime`` is epoch
    seconds and ``CloudTrailEvent`` the stored JSON record. The events are KMS's and STS's
    (``EventSource`` ``kms.amazonaws.com`` or ``sts.amazonaws.com`` selects one; ``ResourceType``
    ``AWS::KMS::Key`` or ``AWS::IAM::Role`` the events naming one). Unlike CloudTrail there is no
    90-day window: every stored event can be found (retention is ``export_and_prune``'s job).
    Pass the caller's ``region`` to answer like CloudTrail's regional endpoint.

    Raises:
        InvalidLookupAttributesException: more than one attribute, or a bad key or value.
        InvalidTimeRangeException: StartTime after EndTime, or not a timestamp.
        InvalidMaxResultsException: MaxResults outside 1-50.
        InvalidNextTokenException: a token that is malformed or from other parameters.
        InvalidEventCategoryException: EventCategory other than ``insight``.
    """
    category = request.get("EventCategory")
    if category is not None and category != "insight":
        raise InvalidEventCategoryException(f"Invalid EventCategory: {category}.")
    start = _timestamp(request.get("StartTime"), "StartTime")
    end = _timestamp(request.get("EndTime"), "EndTime")
    if start is not None and end is not None and start > end:
        raise InvalidTimeRangeException("Start time must be before end time.")
    limit = _max_results(request.get("MaxResults"))
    attribute = _attribute(request.get("LookupAttributes"))
    where = AuditFilter(account_id=account_id, region=region, start=start, end=end)
    fingerprint = _fingerprint(where, attribute)
    after = _read_token(request.get("NextToken"), fingerprint)
    narrowed = _narrow(where, attribute)
    if narrowed is None or category == "insight":  # no Insights events are ever recorded
        return {"Events": []}
    records = await _select(store, *narrowed, limit=limit + 1, after=after)
    response: dict[str, Any] = {"Events": [_lookup_event(r) for r in records[:limit]]}
    if len(records) > limit:
        response["NextToken"] = _write_token(records[limit - 1].seq, fingerprint)
    return response


async def list_events(
    store: AuditStore,
    *,
    account_id: str | None = None,
    region: str | None = None,
    start: float | None = None,
    end: float | None = None,
    key: str | None = None,
    principal: str | None = None,
    event_name: str | None = None,
    limit: int = 100,
    after_seq: int | None = None,
    descending: bool = True,
) -> list[AuditRecord]:
    """Return up to ``limit`` stored events matching every filter given (for the CLI).

    ``key`` is a key ARN, key id, alias name or alias ARN; ``principal`` a principal ARN;
    times are epoch seconds, inclusive. Newest first unless ``descending=False``; pass the
    last record's ``seq`` as ``after_seq`` for the next page. Each record's ``event_json``
    is the CloudTrail JSON line.
    """
    where = AuditFilter(
        account_id=account_id,
        region=region,
        start=start,
        end=end,
        resource=key,
        principal_arn=principal,
        event_name=event_name,
    )
    return await store.query(where, limit=limit, after_seq=after_seq, descending=descending)


async def last_usage(store: AuditStore, key_arn: str) -> KeyLastUsage:
    """Return the newest successful cryptographic operation with the key, for GetKeyLastUsage.

    Counts only the ``TRACKED_OPERATIONS`` (so never an STS event), only events without an
    error (a DryRun is recorded with DryRunOperationException, so it does not count), and
    only events naming the key as a resource (ReEncrypt counts for both its keys).
    """
    where = AuditFilter(resource=key_arn, succeeded=True, event_names=TRACKED_OPERATIONS)
    found = await store.query(where, limit=1)
    tracking_start = await store.tracking_start()
    if not found:
        return KeyLastUsage(tracking_start_date=tracking_start)
    event = decode_event(found[0].event_json)
    return KeyLastUsage(
        tracking_start_date=tracking_start,
        operation=event.event_name,
        timestamp=found[0].event_time,
        cloud_trail_event_id=event.event_id,
        kms_request_id=event.request_id if isinstance(event.request_id, str) else None,
    )
