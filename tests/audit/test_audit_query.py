"""Queries: CloudTrail LookupEvents semantics, the CLI listing, GetKeyLastUsage."""

from __future__ import annotations

import datetime
import json
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kms_actors.audit import (
    AuditEvent,
    AuditStore,
    InvalidEventCategoryException,
    InvalidLookupAttributesException,
    InvalidMaxResultsException,
    InvalidNextTokenException,
    InvalidTimeRangeException,
    LookupEventsError,
    api_call_event,
    last_usage,
    list_events,
    lookup_events,
    open_audit_writer,
)
from kms_actors.domain.clock import FakeClock
from kms_actors.errors import DisabledException, DryRunOperationException
from kms_actors.hsm import CheckpointSigner

from .audit_support import (
    ACCOUNT,
    BOB,
    KEY_ARN,
    KEY_ID,
    OTHER_ACCOUNT,
    OTHER_KEY_ARN,
    START,
    caller,
    event,
)

pytestmark = pytest.mark.anyio

TOTAL = 120


async def recorded(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock, events: list[AuditEvent]
) -> None:
    async with open_audit_writer(data_dir, signer, clock=clock) as log:
        for item in events:
            await log.record(item)


@pytest.fixture
async def many(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock, store: AuditStore
) -> AsyncIterator[AuditStore]:
    """120 Encrypt events by Alice with KEY_ARN, one second apart."""
    await recorded(data_dir, signer, clock, [event(n) for n in range(TOTAL)])
    yield store


async def lookup(store: AuditStore, **request: Any) -> dict[str, Any]:
    return await lookup_events(store, request, account_id=ACCOUNT)


async def test_pages_newest_first_with_next_token(many: AuditStore) -> None:
    seen: list[str] = []
    times: list[float] = []
    pages = 0
    request: dict[str, Any] = {}
    while True:
        page = await lookup(many, **request)
        pages += 1
        seen += [e["EventId"] for e in page["Events"]]
        times += [e["EventTime"] for e in page["Events"]]
        if "NextToken" not in page:
            break
        request = {"NextToken": page["NextToken"]}
    assert pages == 3  # 50 + 50 + 20
    assert len(seen) == len(set(seen)) == TOTAL
    assert times == sorted(times, reverse=True)
    assert times[0] == START + TOTAL - 1


async def test_event_shape(many: AuditStore) -> None:
    page = await lookup(many, MaxResults=1)
    (found,) = page["Events"]
    record = json.loads(found["CloudTrailEvent"])
    assert found == {
        "EventId": record["eventID"],
        "EventName": "Encrypt",
        "ReadOnly": "true",
        "AccessKeyId": "AKIAALICE",
        "EventTime": START + TOTAL - 1,
        "EventSource": "kms.amazonaws.com",
        "Username": "Alice",
        "Resources": [{"ResourceType": "AWS::KMS::Key", "ResourceName": KEY_ARN}],
        "CloudTrailEvent": found["CloudTrailEvent"],
    }
    assert "NextToken" in page


async def test_max_results_and_time_range(many: AuditStore) -> None:
    page = await lookup(many, MaxResults=5, StartTime=START + 10, EndTime=START + 12)
    assert [e["EventTime"] for e in page["Events"]] == [START + 12, START + 11, START + 10]
    assert "NextToken" not in page
    utc = datetime.UTC
    page = await lookup(many, StartTime=datetime.datetime.fromtimestamp(START + 118, utc))
    assert len(page["Events"]) == 2


@pytest.fixture
async def mixed(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock, store: AuditStore
) -> AsyncIterator[tuple[AuditStore, list[AuditEvent]]]:
    """Events by two users, on two keys, read and write, failed, and in another account."""
    bob = caller(BOB, access_key_id="AKIABOB")
    events = [
        event(0),
        event(1, who=bob, operation="DescribeKey"),
        event(2, key_arn=OTHER_KEY_ARN),
        event(3, operation="DisableKey", error=DisabledException("off")),
        event(4, operation="GenerateRandom", key_arn=None, params={}),
        event(5, who=caller(account_id=OTHER_ACCOUNT)),
    ]
    await recorded(data_dir, signer, clock, events)
    yield store, events


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("EventName", "DisableKey", [3]),
        ("ResourceName", KEY_ARN, [3, 1, 0]),
        ("ResourceName", KEY_ID, [3, 1, 0]),
        ("Username", "Bob", [1]),
        ("AccessKeyId", "AKIABOB", [1]),
        ("ReadOnly", "false", [3]),
        ("ReadOnly", "true", [4, 2, 1, 0]),
        ("EventSource", "kms.amazonaws.com", [4, 3, 2, 1, 0]),
        ("EventSource", "s3.amazonaws.com", []),
        ("ResourceType", "AWS::KMS::Key", [3, 2, 1, 0]),
        ("ResourceType", "AWS::S3::Bucket", []),
    ],
)
async def test_lookup_attributes(
    mixed: tuple[AuditStore, list[AuditEvent]], key: str, value: str, expected: list[int]
) -> None:
    store, events = mixed
    page = await lookup(store, LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])
    assert [e["EventId"] for e in page["Events"]] == [events[n].event_id for n in expected]


async def test_lookup_by_event_id_and_account_isolation(
    mixed: tuple[AuditStore, list[AuditEvent]],
) -> None:
    store, events = mixed
    attribute = [{"AttributeKey": "EventId", "AttributeValue": events[2].event_id}]
    page = await lookup(store, LookupAttributes=attribute)
    assert [e["EventId"] for e in page["Events"]] == [events[2].event_id]
    theirs = await lookup_events(store, {}, account_id=OTHER_ACCOUNT)
    assert [e["EventId"] for e in theirs["Events"]] == [events[5].event_id]
    attribute = [{"AttributeKey": "EventId", "AttributeValue": events[5].event_id}]
    assert (await lookup(store, LookupAttributes=attribute))["Events"] == []


async def test_region_filter(mixed: tuple[AuditStore, list[AuditEvent]]) -> None:
    store, _ = mixed
    assert len((await lookup_events(store, {}, account_id=ACCOUNT, region="us-west-2"))["Events"])
    assert (await lookup_events(store, {}, account_id=ACCOUNT, region="eu-west-1"))["Events"] == []


async def test_next_token_is_tied_to_its_parameters(many: AuditStore) -> None:
    attribute = [{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}]
    page = await lookup(many, LookupAttributes=attribute)
    token = page["NextToken"]
    follow = await lookup(many, LookupAttributes=attribute, NextToken=token, MaxResults=10)
    assert len(follow["Events"]) == 10
    with pytest.raises(InvalidNextTokenException):
        await lookup(many, NextToken=token)
    with pytest.raises(InvalidNextTokenException):
        await lookup(many, NextToken="not a token")


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (
            {
                "LookupAttributes": [
                    {"AttributeKey": "EventName", "AttributeValue": "Encrypt"},
                    {"AttributeKey": "Username", "AttributeValue": "Alice"},
                ]
            },
            InvalidLookupAttributesException,
        ),
        (
            {"LookupAttributes": [{"AttributeKey": "Color", "AttributeValue": "red"}]},
            InvalidLookupAttributesException,
        ),
        (
            {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": ""}]},
            InvalidLookupAttributesException,
        ),
        (
            {"LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "yes"}]},
            InvalidLookupAttributesException,
        ),
        ({"MaxResults": 0}, InvalidMaxResultsException),
        ({"MaxResults": 51}, InvalidMaxResultsException),
        ({"StartTime": START + 10, "EndTime": START}, InvalidTimeRangeException),
        ({"StartTime": "yesterday"}, InvalidTimeRangeException),
        ({"EventCategory": "data"}, InvalidEventCategoryException),
    ],
)
async def test_invalid_requests(
    store: AuditStore, request_: dict[str, Any], error: type[LookupEventsError]
) -> None:
    with pytest.raises(error) as caught:
        await lookup_events(store, request_, account_id=ACCOUNT)
    assert caught.value.code == error.__name__
    assert caught.value.response["Error"]["Code"] == error.__name__


async def test_insight_events_are_none(many: AuditStore) -> None:
    assert await lookup(many, EventCategory="insight") == {"Events": []}


async def test_list_events_for_the_cli(mixed: tuple[AuditStore, list[AuditEvent]]) -> None:
    store, events = mixed

    async def ids(**filters: Any) -> list[str]:
        return [r.event_id for r in await list_events(store, **filters)]

    assert await ids() == [e.event_id for e in reversed(events)]
    assert await ids(key=KEY_ID, event_name="Encrypt") == [events[5].event_id, events[0].event_id]
    assert await ids(key=KEY_ID, event_name="Encrypt", account_id=ACCOUNT) == [events[0].event_id]
    assert await ids(principal=BOB) == [events[1].event_id]
    assert await ids(start=START + 2, end=START + 3, descending=False) == [
        events[2].event_id,
        events[3].event_id,
    ]
    assert await ids(account_id=OTHER_ACCOUNT) == [events[5].event_id]
    first = await list_events(store, limit=2)
    rest = await list_events(store, limit=10, after_seq=first[-1].seq)
    assert len(first) + len(rest) == len(events)


async def test_last_usage(
    data_dir: pathlib.Path, signer: CheckpointSigner, clock: FakeClock, store: AuditStore
) -> None:
    assert (await last_usage(store, KEY_ARN)).operation is None
    re_encrypt = api_call_event(
        operation="ReEncrypt",
        caller=caller(),
        params={"DestinationKeyId": KEY_ARN},
        event_time=START + 2,
        request_id="re-encrypt",
        resources=[OTHER_KEY_ARN, KEY_ARN],
    )
    await recorded(
        data_dir,
        signer,
        clock,
        [
            event(0, operation="GenerateDataKey"),
            event(1, operation="DescribeKey"),
            re_encrypt,
            event(3, error=DisabledException("off")),
            event(4, error=DryRunOperationException("dry")),
            event(5, operation="ScheduleKeyDeletion"),
        ],
    )
    usage = await last_usage(store, KEY_ARN)
    assert (usage.operation, usage.timestamp) == ("ReEncrypt", START + 2)
    assert usage.cloud_trail_event_id == re_encrypt.event_id
    assert usage.kms_request_id == "re-encrypt"
    assert usage.tracking_start_date == START
    assert usage.response(KEY_ID, START - 100) == {
        "KeyId": KEY_ID,
        "KeyLastUsage": {
            "Operation": "ReEncrypt",
            "Timestamp": START + 2,
            "CloudTrailEventId": re_encrypt.event_id,
            "KmsRequestId": "re-encrypt",
        },
        "TrackingStartDate": START,
        "KeyCreationDate": START - 100,
    }
    assert (await last_usage(store, OTHER_KEY_ARN)).operation == "ReEncrypt"
    unused = await last_usage(store, KEY_ARN.replace(KEY_ID, "0" * 8 + KEY_ID[8:]))
    assert unused.response("k", START + 50)["KeyLastUsage"] == {}
    assert unused.response("k", START + 50)["TrackingStartDate"] == START + 50
