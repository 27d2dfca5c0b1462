"""boto3's ``cloudtrail`` client, pointed at the server, pages through the caller's KMS events.

The test works in a Region no other test uses, so the events there are exactly its own.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from tests.audit_e2e.audit_e2e_support import ClientFactory

REGION = "eu-west-3"


def _pages(cloudtrail: Any, **params: Any) -> list[list[dict[str, Any]]]:
    paginator = cloudtrail.get_paginator("lookup_events")
    return [page["Events"] for page in paginator.paginate(**params)]


def _request_id(event: dict[str, Any]) -> str:
    request_id: str = json.loads(event["CloudTrailEvent"])["requestID"]
    return request_id


def test_lookup_events_pages_filters_by_event_name_and_resource(
    make_client: ClientFactory,
) -> None:
    kms = make_client(region=REGION)
    cloudtrail = make_client("cloudtrail", region=REGION)
    calls: list[tuple[str, str]] = []  # (operation, request id), oldest first

    def record(operation: str, response: dict[str, Any]) -> dict[str, Any]:
        calls.append((operation, response["ResponseMetadata"]["RequestId"]))
        return response

    key = record("CreateKey", kms.create_key())["KeyMetadata"]
    blobs = [
        record("Encrypt", kms.encrypt(KeyId=key["KeyId"], Plaintext=bytes([n]) * 8))[
            "CiphertextBlob"
        ]
        for n in range(4)
    ]
    for blob in blobs[:2]:
        record("Decrypt", kms.decrypt(CiphertextBlob=blob))
    record("DescribeKey", kms.describe_key(KeyId=key["Arn"]))
    record("GenerateRandom", kms.generate_random(NumberOfBytes=8))
    record("ListKeys", kms.list_keys())
    assert len(calls) == 10

    pages = _pages(cloudtrail, PaginationConfig={"PageSize": 3})
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    found = [event for page in pages for event in page]
    assert [_request_id(e) for e in found] == [request_id for _, request_id in calls[::-1]]
    assert [e["EventName"] for e in found] == [operation for operation, _ in calls[::-1]]
    assert len({e["EventId"] for e in found}) == 10
    times = [e["EventTime"] for e in found]
    assert all(isinstance(t, datetime.datetime) for t in times)
    assert times == sorted(times, reverse=True)
    encrypt = found[-2]
    assert encrypt["EventSource"] == "kms.amazonaws.com"
    assert encrypt["ReadOnly"] == "true"
    assert encrypt["Username"] == "dev"
    assert encrypt["AccessKeyId"] == "AKIAEXAMPLEDEV000001"
    assert encrypt["Resources"] == [{"ResourceType": "AWS::KMS::Key", "ResourceName": key["Arn"]}]
    assert json.loads(encrypt["CloudTrailEvent"])["eventID"] == encrypt["EventId"]

    by_name = _pages(
        cloudtrail,
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}],
        PaginationConfig={"PageSize": 3},
    )
    assert [len(page) for page in by_name] == [3, 1]
    assert [_request_id(e) for page in by_name for e in page] == [
        request_id for operation, request_id in calls[::-1] if operation == "Encrypt"
    ]

    by_key = _pages(
        cloudtrail,
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}],
        PaginationConfig={"PageSize": 3},
    )
    # Every call but GenerateRandom and ListKeys concerns the key, its creation included.
    assert [_request_id(e) for page in by_key for e in page] == [
        request_id
        for operation, request_id in calls[::-1]
        if operation not in ("GenerateRandom", "ListKeys")
    ]
    by_key_id = _pages(
        cloudtrail,
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["KeyId"]}],
    )
    assert [e["EventId"] for e in by_key_id[0]] == [e["EventId"] for p in by_key for e in p]

    # Other Regions' endpoints do not show these events.
    elsewhere = make_client("cloudtrail", region="ap-south-2")
    assert (
        elsewhere.lookup_events(
            LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}]
        )["Events"]
        == []
    )
