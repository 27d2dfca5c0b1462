"""Grants end to end through the embedded client: created, enforced, listed, retired, revoked.

These need the key actor to load grants and the router to serve ``kms_actors.ops.grants``.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import kms_actors
from kms_actors import FakeClock
from tests.engine.engine_support import DAY, error_of, eventually, is_gone, new_key

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The service tests run on asyncio."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("KMS_ACTORS_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "data"


@pytest.fixture
async def kms(data_dir: pathlib.Path, clock: FakeClock) -> AsyncIterator[Any]:
    async with kms_actors.open_kms(data_dir, clock=clock) as client:
        yield client


def _arn(kms: Any, name: str) -> str:
    return f"arn:aws:iam::{kms.caller.account_id}:user/{name}"


def _allow(*actions: str) -> str:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


async def _codes(kms: Any, key_id: str, context: dict[str, str] | None = None) -> list[str]:
    """Return "ok" or the error code of Encrypt, GenerateDataKey and DescribeKey."""
    extra = {"EncryptionContext": context} if context else {}
    calls = [
        kms.encrypt(KeyId=key_id, Plaintext=b"secret", **extra),
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", **extra),
        kms.describe_key(KeyId=key_id),
    ]
    codes = []
    for call in calls:
        try:
            await call
        except kms_actors.KmsError as error:
            codes.append(error.code)
        else:
            codes.append("ok")
    return codes


async def test_grant_is_enforced_at_once_and_revoked_at_once(kms: Any) -> None:
    key = await new_key(kms)
    alice = kms.as_caller(arn=_arn(kms, "alice"))
    assert await _codes(alice, key["KeyId"]) == ["AccessDeniedException"] * 3

    created = await kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=alice.caller.arn, Operations=["Encrypt", "Decrypt"]
    )
    assert await _codes(alice, key["KeyId"]) == ["ok", "AccessDeniedException"] * 1 + [
        "AccessDeniedException"
    ]
    blob = (await alice.encrypt(KeyId=key["Arn"], Plaintext=b"x"))["CiphertextBlob"]
    assert (await alice.decrypt(CiphertextBlob=blob))["Plaintext"] == b"x"

    grants = (await kms.list_grants(KeyId=key["KeyId"]))["Grants"]
    assert len(grants) == 1
    entry = grants[0]
    assert entry["KeyId"] == key["Arn"]
    assert entry["GrantId"] == created["GrantId"]
    assert entry["GranteePrincipal"] == alice.caller.arn
    assert entry["IssuingAccount"] == f"arn:aws:iam::{kms.caller.account_id}:root"
    assert entry["Operations"] == ["Encrypt", "Decrypt"]
    assert "Name" not in entry and "RetiringPrincipal" not in entry and "Constraints" not in entry

    await kms.revoke_grant(KeyId=key["KeyId"], GrantId=created["GrantId"])
    assert await _codes(alice, key["KeyId"]) == ["AccessDeniedException"] * 3
    assert (await kms.list_grants(KeyId=key["KeyId"]))["Grants"] == []


async def test_constraints_through_the_service(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    bob = kms.as_caller(arn=_arn(kms, "bob"))
    await kms.create_grant(
        KeyId=key_id,
        GranteePrincipal=bob.caller.arn,
        Operations=["Encrypt", "GenerateDataKey", "DescribeKey"],
        Constraints={"EncryptionContextSubset": {"team": "blue"}},
    )
    assert await _codes(bob, key_id, {"team": "blue", "x": "y"}) == ["ok", "ok", "ok"]
    assert await _codes(bob, key_id, {"team": "red"}) == [
        "AccessDeniedException",
        "AccessDeniedException",
        "ok",
    ]
    listed = (await kms.list_grants(KeyId=key_id))["Grants"][0]
    assert listed["Constraints"] == {"EncryptionContextSubset": {"team": "blue"}}


async def test_retire_by_token_and_by_id(kms: Any) -> None:
    key = await new_key(kms)
    alice = kms.as_caller(arn=_arn(kms, "alice"))
    bob = kms.as_caller(arn=_arn(kms, "bob"))
    by_token = await kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=alice.caller.arn,
        RetiringPrincipal=bob.caller.arn,
        Operations=["Encrypt"],
    )
    by_id = await kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=alice.caller.arn,
        Operations=["DescribeKey", "RetireGrant"],
    )
    error = await error_of(alice.retire_grant(GrantToken=by_token["GrantToken"]))
    assert error.code == "AccessDeniedException"
    await bob.retire_grant(GrantToken=by_token["GrantToken"])
    assert await _codes(alice, key["KeyId"]) == ["AccessDeniedException"] * 2 + ["ok"]

    await alice.retire_grant(KeyId=key["Arn"], GrantId=by_id["GrantId"])
    assert await _codes(alice, key["KeyId"]) == ["AccessDeniedException"] * 3
    error = await error_of(kms.retire_grant(KeyId=key["KeyId"], GrantId=by_id["GrantId"]))
    assert error.code == "NotFoundException"
    error = await error_of(kms.retire_grant(GrantToken="not-a-token!"))
    assert error.code == "InvalidGrantTokenException"
    error = await error_of(kms.retire_grant(GrantId=by_id["GrantId"]))
    assert error.code == "ValidationException"


async def test_list_retirable_grants(kms: Any, clock: FakeClock) -> None:
    bob = _arn(kms, "bob")
    created = []
    for _ in range(3):
        key_id = (await new_key(kms))["KeyId"]
        clock.advance(1)  # listed across keys in creation-date order
        created.append(
            await kms.create_grant(
                KeyId=key_id,
                GranteePrincipal=_arn(kms, "alice"),
                RetiringPrincipal=bob,
                Operations=["Decrypt"],
            )
        )
    first = await kms.list_retirable_grants(RetiringPrincipal=bob, Limit=2)
    assert first["Truncated"] is True
    rest = await kms.list_retirable_grants(RetiringPrincipal=bob, Marker=first["NextMarker"])
    assert rest["Truncated"] is False
    listed = [g["GrantId"] for g in first["Grants"] + rest["Grants"]]
    assert listed == [c["GrantId"] for c in created]
    assert first["Grants"][0]["RetiringPrincipal"] == bob
    error = await error_of(kms.list_retirable_grants(RetiringPrincipal=bob, Marker="bad"))
    assert error.code == "InvalidMarkerException"
    other = "arn:aws:iam::444455556666:user/bob"
    error = await error_of(kms.list_retirable_grants(RetiringPrincipal=other))
    assert error.code == "AccessDeniedException"
    nobody = kms.as_caller(arn=_arn(kms, "nobody"))
    error = await error_of(nobody.list_retirable_grants(RetiringPrincipal=bob))
    assert error.code == "AccessDeniedException"


async def test_name_makes_create_grant_idempotent(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    params = {
        "KeyId": key_id,
        "GranteePrincipal": _arn(kms, "alice"),
        "Operations": ["Decrypt"],
        "Name": "ebs-volume-1",
    }
    first = await kms.create_grant(**params)
    second = await kms.create_grant(**params)
    assert second["GrantId"] == first["GrantId"]
    assert second["GrantToken"] != first["GrantToken"]
    assert len((await kms.list_grants(KeyId=key_id))["Grants"]) == 1


async def test_invalid_create_grant_requests(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    for params in (
        {"GranteePrincipal": _arn(kms, "alice"), "Operations": ["Sign"]},
        {"GranteePrincipal": "alice", "Operations": ["Decrypt"]},
        {"Operations": ["Decrypt"]},
        {
            "GranteePrincipal": _arn(kms, "alice"),
            "Operations": ["Decrypt"],
            "Constraints": {
                "EncryptionContextSubset": {"a": "1"},
                "EncryptionContextEquals": {"a": "1"},
            },
        },
    ):
        error = await error_of(kms.create_grant(KeyId=key_id, **params))
        assert error.code == "ValidationException", params
    error = await error_of(
        kms.create_grant(
            KeyId=key_id,
            GranteePrincipal=_arn(kms, "alice"),
            Operations=["Decrypt"],
            GrantTokens=["garbage!"],
        )
    )
    assert error.code == "InvalidGrantTokenException"


async def test_malformed_grant_token_on_a_grant_based_request(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    alice = kms.as_caller(arn=_arn(kms, "alice"))
    created = await kms.create_grant(
        KeyId=key_id, GranteePrincipal=alice.caller.arn, Operations=["Encrypt"]
    )
    await alice.encrypt(KeyId=key_id, Plaintext=b"x", GrantTokens=[created["GrantToken"]])
    error = await error_of(alice.encrypt(KeyId=key_id, Plaintext=b"x", GrantTokens=["nope!"]))
    assert error.code == "InvalidGrantTokenException"


async def test_cross_account_grant_with_iam_delegation(kms: Any) -> None:
    key = await new_key(kms)
    other = "444455556666"
    await kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=f"arn:aws:iam::{other}:root", Operations=["Encrypt"]
    )
    carol_arn = f"arn:aws:iam::{other}:user/carol"
    carol = kms.as_caller(account_id=other, arn=carol_arn, identity_policies=[_allow("kms:*")])
    await carol.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    dave = kms.as_caller(account_id=other, arn=f"arn:aws:iam::{other}:user/dave")
    error = await error_of(dave.encrypt(KeyId=key["Arn"], Plaintext=b"x"))
    assert error.code == "AccessDeniedException"


async def test_grants_survive_a_restart(data_dir: pathlib.Path, clock: FakeClock) -> None:
    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        key_id = (await new_key(kms))["KeyId"]
        await kms.create_grant(
            KeyId=key_id, GranteePrincipal=_arn(kms, "alice"), Operations=["Encrypt"]
        )
    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        alice = kms.as_caller(arn=_arn(kms, "alice"))
        await alice.encrypt(KeyId=key_id, Plaintext=b"x")
        assert len((await kms.list_grants(KeyId=key_id))["Grants"]) == 1


async def test_grants_die_with_their_key(kms: Any, clock: FakeClock) -> None:
    bob = _arn(kms, "bob")
    key_id = (await new_key(kms))["KeyId"]
    await kms.create_grant(
        KeyId=key_id,
        GranteePrincipal=_arn(kms, "alice"),
        RetiringPrincipal=bob,
        Operations=["Decrypt"],
    )
    assert len((await kms.list_retirable_grants(RetiringPrincipal=bob))["Grants"]) == 1
    await kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    clock.advance(8 * DAY)
    await eventually(lambda: is_gone(kms, key_id))
    assert (await kms.list_retirable_grants(RetiringPrincipal=bob))["Grants"] == []


async def test_list_grants_pages_and_filters(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    alice, bob = _arn(kms, "alice"), _arn(kms, "bob")
    ids = [
        (
            await kms.create_grant(
                KeyId=key_id, GranteePrincipal=alice if n % 2 else bob, Operations=["Decrypt"]
            )
        )["GrantId"]
        for n in range(5)
    ]
    first = await kms.list_grants(KeyId=key_id, Limit=2)
    assert first["Truncated"] is True
    second = await kms.list_grants(KeyId=key_id, Limit=2, Marker=first["NextMarker"])
    third = await kms.list_grants(KeyId=key_id, Limit=2, Marker=second["NextMarker"])
    assert third["Truncated"] is False and "NextMarker" not in third
    pages = [first, second, third]
    assert [g["GrantId"] for page in pages for g in page["Grants"]] == ids
    by_alice = await kms.list_grants(KeyId=key_id, GranteePrincipal=alice)
    assert [g["GrantId"] for g in by_alice["Grants"]] == [ids[1], ids[3]]
    one = await kms.list_grants(KeyId=key_id, GrantId=ids[2])
    assert [g["GrantId"] for g in one["Grants"]] == [ids[2]]
    error = await error_of(kms.list_grants(KeyId=key_id, Marker="bad"))
    assert error.code == "InvalidMarkerException"


async def test_role_grant_serves_its_sessions(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    account = kms.caller.account_id
    await kms.create_grant(
        KeyId=key_id,
        GranteePrincipal=f"arn:aws:iam::{account}:role/app/Worker",
        Operations=["GenerateDataKey"],
    )
    session = kms.as_caller(arn=f"arn:aws:sts::{account}:assumed-role/Worker/i-123")
    await session.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    other = kms.as_caller(arn=f"arn:aws:sts::{account}:assumed-role/Other/i-123")
    error = await error_of(other.generate_data_key(KeyId=key_id, KeySpec="AES_256"))
    assert error.code == "AccessDeniedException"


async def test_dry_runs_change_nothing(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    params = {"KeyId": key_id, "GranteePrincipal": _arn(kms, "alice"), "Operations": ["Decrypt"]}
    error = await error_of(kms.create_grant(DryRun=True, **params))
    assert error.code == "DryRunOperationException"
    assert (await kms.list_grants(KeyId=key_id))["Grants"] == []
    grant_id = (await kms.create_grant(**params))["GrantId"]
    for call in (
        kms.revoke_grant(KeyId=key_id, GrantId=grant_id, DryRun=True),
        kms.retire_grant(KeyId=key_id, GrantId=grant_id, DryRun=True),
    ):
        assert (await error_of(call)).code == "DryRunOperationException"
    assert len((await kms.list_grants(KeyId=key_id))["Grants"]) == 1
    nobody = kms.as_caller(arn=_arn(kms, "nobody"))
    error = await error_of(nobody.create_grant(DryRun=True, **params))
    assert error.code == "AccessDeniedException"
