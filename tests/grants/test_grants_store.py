"""The grants repository: CRUD, ordering, ListRetirableGrants queries, purge, migration."""

from __future__ import annotations

import contextlib
import itertools
import pathlib
import sqlite3
from collections.abc import AsyncIterator

import pytest

from kms_actors.domain.records import GrantRecord, KeyRecord
from kms_actors.store import GrantExists, Store, _migrations, open_store
from tests.store._factories import make_key, make_material

pytestmark = pytest.mark.anyio

_numbers = itertools.count(1)
RETIRER = "arn:aws:iam::111122223333:role/Retirer"


def make_grant(key: KeyRecord, **changes: object) -> GrantRecord:
    """Return a grant of ``key`` with a unique id."""
    number = next(_numbers)
    fields: dict[str, object] = {
        "key_id": key.key_id,
        "grant_id": f"{number:064x}",
        "grantee_principal": "arn:aws:iam::111122223333:user/alice",
        "issuing_account": f"arn:aws:iam::{key.account_id}:root",
        "operations": ("Decrypt", "Encrypt"),
        "creation_date": 1_700_000_000.0 + number,
    }
    fields.update(changes)
    return GrantRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: pathlib.Path) -> AsyncIterator[Store]:
    async with open_store(tmp_path / "data") as opened:
        yield opened


async def stored_key(store: Store, **changes: str) -> KeyRecord:
    key = make_key(**changes)
    await store.keys.insert(key, make_material(key))
    return key


async def test_insert_and_read_back_every_field(store: Store) -> None:
    key = await stored_key(store)
    grant = make_grant(
        key,
        name="n:1/x_y-z",
        retiring_principal=RETIRER,
        encryption_context_equals={"Département": "IT", "quote": '"\\'},
    )
    plain = make_grant(key, encryption_context_subset={"a": "1"}, operations=("DescribeKey",))
    await store.grants.insert(grant)
    await store.grants.insert(plain)
    assert await store.grants.get(grant.grant_id) == grant
    assert await store.grants.get(plain.grant_id) == plain
    assert await store.grants.get("0" * 64) is None
    assert await store.grants.for_key(key.key_id) == [grant, plain]


async def test_for_key_orders_by_creation_date_then_grant_id(store: Store) -> None:
    key = await stored_key(store)
    other = await stored_key(store)
    late = make_grant(key, creation_date=10.0)
    tie_b = make_grant(key, grant_id="b" * 64, creation_date=5.0)
    tie_a = make_grant(key, grant_id="a" * 64, creation_date=5.0)
    for grant in (late, tie_b, tie_a, make_grant(other)):
        await store.grants.insert(grant)
    assert await store.grants.for_key(key.key_id) == [tie_a, tie_b, late]


async def test_duplicate_and_orphan_grants_are_refused(store: Store) -> None:
    key = await stored_key(store)
    grant = make_grant(key)
    await store.grants.insert(grant)
    with pytest.raises(GrantExists):
        await store.grants.insert(grant)
    with pytest.raises(KeyError):
        await store.grants.insert(make_grant(make_key()))


async def test_delete(store: Store) -> None:
    key = await stored_key(store)
    other = await stored_key(store)
    keep, drop = make_grant(key), make_grant(key)
    await store.grants.insert(keep)
    await store.grants.insert(drop)
    await store.grants.delete(other.key_id, drop.grant_id)  # another key's id: nothing
    assert len(await store.grants.for_key(key.key_id)) == 2
    await store.grants.delete(key.key_id, drop.grant_id)
    await store.grants.delete(key.key_id, drop.grant_id)  # already gone: nothing
    assert await store.grants.for_key(key.key_id) == [keep]


async def test_purge_deletes_the_keys_grants(store: Store) -> None:
    key = await stored_key(store)
    other = await stored_key(store)
    survivor = make_grant(other)
    await store.grants.insert(make_grant(key, retiring_principal=RETIRER))
    await store.grants.insert(survivor)
    await store.keys.purge(key.key_id)
    assert await store.grants.for_key(key.key_id) == []
    assert await store.grants.retirable(key.region, RETIRER, limit=10) == []
    assert await store.grants.for_key(other.key_id) == [survivor]


async def test_grants_cascade_with_their_key_row(store: Store) -> None:
    key = await stored_key(store)
    await store.grants.insert(make_grant(key))
    with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM materials WHERE key_id = ?", (key.key_id,))
        conn.execute("DELETE FROM keys WHERE key_id = ?", (key.key_id,))
        assert conn.execute("SELECT count(*) FROM grants").fetchone()[0] == 0


async def test_retirable_spans_accounts_of_one_region_and_pages(store: Store) -> None:
    mine = await stored_key(store)
    theirs = await stored_key(store, account_id="444455556666")
    elsewhere = await stored_key(store, region="us-west-2")
    expected = [
        make_grant(mine, retiring_principal=RETIRER),
        make_grant(theirs, retiring_principal=RETIRER),
        make_grant(mine, retiring_principal=RETIRER),
    ]
    for grant in [
        *expected,
        make_grant(mine),
        make_grant(mine, retiring_principal="arn:aws:iam::111122223333:user/other"),
        make_grant(elsewhere, retiring_principal=RETIRER),
    ]:
        await store.grants.insert(grant)
    region = mine.region
    assert await store.grants.retirable(region, RETIRER, limit=10) == expected
    assert await store.grants.retirable(region, "", limit=10) == []
    first = await store.grants.retirable(region, RETIRER, limit=2)
    assert first == expected[:2]
    last = first[-1]
    after = (last.creation_date, last.grant_id)
    assert await store.grants.retirable(region, RETIRER, limit=2, after=after) == expected[2:]
    with pytest.raises(ValueError, match="limit"):
        await store.grants.retirable(region, RETIRER, limit=0)


async def test_grant_columns_are_the_record_fields(store: Store) -> None:
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(grants)")}
    assert columns == set(GrantRecord.__struct_fields__)


async def test_a_version_1_database_is_migrated(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(_migrations, "migrations", _migrations.migrations[:1])
        async with open_store(tmp_path) as old:
            assert old.schema_version == 1
            key = make_key()
            await old.keys.insert(key, make_material(key))
            path = old.path
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "grants" not in tables

    async with open_store(tmp_path) as store:
        assert store.schema_version == _migrations.latest_version() >= 2
        assert await store.keys.get(key.key_id) == key
        grant = make_grant(key, retiring_principal=RETIRER)
        await store.grants.insert(grant)
        assert await store.grants.for_key(key.key_id) == [grant]
        await store.keys.purge(key.key_id)
        assert await store.grants.get(grant.grant_id) is None
