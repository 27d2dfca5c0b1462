"""One scenario table, three ways in: the embedded client, boto3 over HTTP, the async HTTP client.

Each run starts from an empty key namespace (a fresh data directory for the embedded client, a
Region of its own on the shared server), so the three must agree exactly once the volatile
values are replaced: key ids and ARNs by the step names that made them, dates by a marker,
blobs by their length, the Region by a marker, request ids dropped.
"""

from __future__ import annotations

import datetime
import functools
import pathlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

import kms_actors
from kms_actors.client import open_kms_http
from tests.http.conftest import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ClientFactory


@dataclass(frozen=True)
class Ref:
    """A value saved by an earlier step."""

    name: str


@dataclass(frozen=True)
class Step:
    """Call ``method`` with ``params``; expect success or the error code ``error``."""

    method: str
    params: dict[str, Any]
    error: str | None = None
    save: dict[str, str] = field(default_factory=dict)  # name -> dotted path in the result


CONTEXT = {"purpose": "parity"}
MISSING_KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
K1, K2 = Ref("k1"), Ref("k2")

SCENARIO: list[Step] = [
    Step(
        "create_key",
        {"Description": "parity one", "Tags": [{"TagKey": "env", "TagValue": "test"}]},
        save={"k1": "KeyMetadata.KeyId", "arn1": "KeyMetadata.Arn"},
    ),
    Step("create_key", {"Description": "parity two"}, save={"k2": "KeyMetadata.KeyId"}),
    Step("describe_key", {"KeyId": K1}),
    Step("describe_key", {"KeyId": Ref("arn1")}),
    Step("update_key_description", {"KeyId": K1, "Description": "renamed"}),
    Step("describe_key", {"KeyId": K1}),
    Step(
        "encrypt",
        {"KeyId": K1, "Plaintext": b"hello parity", "EncryptionContext": CONTEXT},
        save={"ct1": "CiphertextBlob"},
    ),
    Step("decrypt", {"CiphertextBlob": Ref("ct1"), "EncryptionContext": CONTEXT}),
    Step("decrypt", {"CiphertextBlob": Ref("ct1")}, error="InvalidCiphertextException"),
    Step(
        "decrypt",
        {"CiphertextBlob": Ref("ct1"), "EncryptionContext": CONTEXT, "KeyId": K2},
        error="IncorrectKeyException",
    ),
    Step("decrypt", {"CiphertextBlob": b"\x01" * 90}, error="InvalidCiphertextException"),
    Step(
        "re_encrypt",
        {
            "CiphertextBlob": Ref("ct1"),
            "SourceEncryptionContext": CONTEXT,
            "DestinationKeyId": K2,
        },
        save={"ct2": "CiphertextBlob"},
    ),
    Step("decrypt", {"CiphertextBlob": Ref("ct2")}),
    Step("generate_data_key", {"KeyId": K1, "KeySpec": "AES_256"}),
    Step("generate_data_key_without_plaintext", {"KeyId": K1, "NumberOfBytes": 64}),
    Step(
        "generate_data_key",
        {"KeyId": K1, "KeySpec": "AES_256", "NumberOfBytes": 32},
        error="ValidationException",
    ),
    Step("generate_random", {"NumberOfBytes": 48}),
    Step("create_alias", {"AliasName": "alias/parity", "TargetKeyId": K1}),
    Step(
        "create_alias",
        {"AliasName": "alias/parity", "TargetKeyId": K2},
        error="AlreadyExistsException",
    ),
    Step(
        "create_alias",
        {"AliasName": "alias/aws/parity", "TargetKeyId": K1},
        error="NotAuthorizedException",
    ),
    Step(
        "create_alias",
        {"AliasName": "no-prefix", "TargetKeyId": K1},
        error="ValidationException",
    ),
    Step("create_alias", {"AliasName": "alias/parity-b", "TargetKeyId": K2}),
    Step("create_alias", {"AliasName": "alias/parity-c", "TargetKeyId": K2}),
    Step("list_aliases", {"Limit": 2}, save={"marker": "NextMarker"}),
    Step("list_aliases", {"Limit": 2, "Marker": Ref("marker")}),
    Step("list_aliases", {"KeyId": K2}),
    Step("update_alias", {"AliasName": "alias/parity", "TargetKeyId": K2}),
    Step(
        "update_alias",
        {"AliasName": "alias/never-made", "TargetKeyId": K2},
        error="NotFoundException",
    ),
    Step("encrypt", {"KeyId": "alias/parity", "Plaintext": b"via alias"}),
    Step("delete_alias", {"AliasName": "alias/parity"}),
    Step("delete_alias", {"AliasName": "alias/parity"}, error="NotFoundException"),
    Step("describe_key", {"KeyId": "alias/parity"}, error="NotFoundException"),
    Step(
        "tag_resource",
        {"KeyId": K1, "Tags": [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}]},
    ),
    Step("untag_resource", {"KeyId": K1, "TagKeys": ["env"]}),
    Step("list_resource_tags", {"KeyId": K1, "Limit": 1}),
    Step("list_resource_tags", {"KeyId": K1}),
    Step(
        "tag_resource",
        {"KeyId": K1, "Tags": [{"TagKey": "aws:reserved", "TagValue": "1"}]},
        error="TagException",
    ),
    Step(
        "tag_resource",
        {"KeyId": K1, "Tags": [{"TagKey": "t" * 129, "TagValue": "1"}]},
        error="ValidationException",
    ),
    Step("disable_key", {"KeyId": K1}),
    Step("describe_key", {"KeyId": K1}),
    Step("encrypt", {"KeyId": K1, "Plaintext": b"x"}, error="DisabledException"),
    Step(
        "decrypt",
        {"CiphertextBlob": Ref("ct1"), "EncryptionContext": CONTEXT},
        error="DisabledException",
    ),
    Step("enable_key", {"KeyId": K1}),
    Step("schedule_key_deletion", {"KeyId": K2, "PendingWindowInDays": 7}),
    Step("encrypt", {"KeyId": K2, "Plaintext": b"x"}, error="KMSInvalidStateException"),
    Step(
        "schedule_key_deletion",
        {"KeyId": K2, "PendingWindowInDays": 7},
        error="KMSInvalidStateException",
    ),
    Step("cancel_key_deletion", {"KeyId": K2}),
    Step("describe_key", {"KeyId": K2}),
    Step("describe_key", {"KeyId": MISSING_KEY}, error="NotFoundException"),
    Step(
        "update_key_description",
        {"KeyId": K1, "Description": "d" * 8193},
        error="ValidationException",
    ),
    Step("encrypt", {"KeyId": K1, "Plaintext": b"p" * 4097}, error="ValidationException"),
    Step(
        "schedule_key_deletion",
        {"KeyId": K1, "PendingWindowInDays": 400},
        error="ValidationException",
    ),
    Step(
        "create_key",
        {"KeyUsage": "SIGN_VERIFY", "KeySpec": "RSA_2048"},
        error="UnsupportedOperationException",
    ),
    Step(
        "sign",
        {"KeyId": K1, "Message": b"m", "SigningAlgorithm": "RSASSA_PSS_SHA_256"},
        error="UnsupportedOperationException",
    ),
    Step("list_keys", {}),
]

Outcome = tuple[str, Any]
Call = Callable[[str, dict[str, Any]], Awaitable[Outcome]]


class Normalizer:
    """Replace a run's volatile values by names that are the same in every run."""

    def __init__(self, region: str) -> None:
        self._names: dict[str, str] = {region: "<region>"}

    def name(self, value: str, name: str) -> None:
        self._names[value] = f"<{name}>"

    def __call__(self, value: Any, key: str = "") -> Any:
        if key == "NextMarker" or key.endswith("KeyMaterialId"):
            return f"<{key}>"
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in value.items() if k != "ResponseMetadata"}
        if isinstance(value, list):
            items = [self(item) for item in value]
            if key == "Keys":  # listing order follows the (random) key ids
                items.sort(key=repr)
            return items
        if isinstance(value, datetime.datetime):
            assert value.tzinfo is not None, (key, value)
            return "<datetime>"
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        if isinstance(value, str):
            for actual, name in sorted(self._names.items(), key=lambda item: -len(item[0])):
                value = value.replace(actual, name)
        return value


def _dig(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for part in path.split("."):
        value = value[part]
    return value


def _resolve(value: Any, saved: dict[str, Any]) -> Any:
    if isinstance(value, Ref):
        return saved[value.name]
    if isinstance(value, dict):
        return {k: _resolve(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(item, saved) for item in value]
    return value


async def run_scenario(call: Call, region: str) -> list[Outcome]:
    """Run SCENARIO through ``call``; return the normalised outcome of every step."""
    normalize = Normalizer(region)
    saved: dict[str, Any] = {}
    outcomes: list[Outcome] = []
    for index, step in enumerate(SCENARIO):
        kind, result = await call(step.method, _resolve(step.params, saved))
        if kind == "ok":
            for name, path in step.save.items():
                saved[name] = _dig(result, path)
                if isinstance(saved[name], str) and name != "marker":
                    normalize.name(saved[name], name)
            outcomes.append(("ok", normalize(result)))
        else:
            code, message = result
            outcomes.append(("error", (code, normalize(message))))
        expected = ("error", step.error) if step.error else ("ok", None)
        actual = (kind, result[0] if kind == "error" else None)
        assert actual == expected, (index, step, result)
    return outcomes


async def _embedded_outcomes(data_dir: pathlib.Path, region: str) -> list[Outcome]:
    async with kms_actors.open_kms(data_dir, region=region) as kms:

        async def call(method: str, params: dict[str, Any]) -> Outcome:
            try:
                return ("ok", await getattr(kms, method)(**params))
            except kms_actors.KmsError as error:
                return ("error", (error.code, error.message))

        return await run_scenario(call, region)


def _boto3_call(client: Any) -> Call:
    async def call(method: str, params: dict[str, Any]) -> Outcome:
        try:
            bound = functools.partial(getattr(client, method), **params)
            return ("ok", await anyio.to_thread.run_sync(bound))
        except ClientError as error:
            return ("error", (error.response["Error"]["Code"], error.response["Error"]["Message"]))

    return call


def _assert_same(expected: list[Outcome], actual: list[Outcome]) -> None:
    assert len(expected) == len(actual) == len(SCENARIO)
    for index, (step, mine, theirs) in enumerate(zip(SCENARIO, expected, actual, strict=True)):
        assert mine == theirs, f"step {index} {step.method}({step.params})"


@pytest.mark.anyio
async def test_boto3_over_http_matches_the_embedded_client(
    make_client: ClientFactory, tmp_path: pathlib.Path
) -> None:
    region = "ap-northeast-1"
    embedded = await _embedded_outcomes(tmp_path / "embedded", region)
    remote = await run_scenario(_boto3_call(make_client(region=region)), region)
    _assert_same(embedded, remote)


@pytest.mark.anyio
async def test_async_http_client_matches_the_embedded_client(
    endpoint: str, tmp_path: pathlib.Path
) -> None:
    region = "ap-southeast-1"
    embedded = await _embedded_outcomes(tmp_path / "embedded", region)
    async with open_kms_http(
        endpoint,
        region=region,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    ) as kms:

        async def call(method: str, params: dict[str, Any]) -> Outcome:
            try:
                return ("ok", await getattr(kms, method)(**params))
            except kms_actors.KmsError as error:
                return ("error", (error.code, error.message))

        remote = await run_scenario(call, region)
    _assert_same(embedded, remote)
