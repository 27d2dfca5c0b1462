"""The aliases repository: CRUD, uniqueness, paging and filtering."""

from __future__ import annotations

import msgspec
import pytest

from kms_actors.domain.records import KeyRecord
from kms_actors.store import AliasExists, Store

from ._factories import ACCOUNT, REGION, make_alias, make_key, make_material

pytestmark = pytest.mark.anyio


async def _stored_key(store: Store, **kwargs: str) -> KeyRecord:
    key = make_key(**kwargs)
    await store.keys.insert(key, make_material(key))
    return key


async def test_insert_and_get(store: Store) -> None:
    key = await _stored_key(store)
    alias = make_alias(key, "orders")
    await store.aliases.insert(alias)
    assert await store.aliases.get(ACCOUNT, REGION, "alias/orders") == alias
    assert await store.aliases.get(ACCOUNT, "us-east-1", "alias/orders") is None
    assert await store.aliases.get(ACCOUNT, REGION, "alias/other") is None


async def test_duplicate_name_raises_alias_exists(store: Store) -> None:
    key, other = await _stored_key(store), await _stored_key(store)
    alias = make_alias(key, "orders")
    await store.aliases.insert(alias)
    with pytest.raises(AliasExists):
        await store.aliases.insert(make_alias(other, "orders"))
    assert await store.aliases.all() == [alias]


async def test_same_name_in_other_region_or_account_is_fine(store: Store) -> None:
    here = await _stored_key(store)
    there = await _stored_key(store, region="us-east-1")
    theirs = await _stored_key(store, account_id="444455556666")
    for key in (here, there, theirs):
        await store.aliases.insert(make_alias(key, "orders"))
    assert len(await store.aliases.all()) == 3


async def test_alias_to_unknown_key_raises_key_error(store: Store) -> None:
    with pytest.raises(KeyError):
        await store.aliases.insert(make_alias(make_key(), "orphan"))
    assert await store.aliases.all() == []


async def test_update_retargets(store: Store) -> None:
    key, other = await _stored_key(store), await _stored_key(store)
    alias = make_alias(key, "orders")
    await store.aliases.insert(alias)
    moved = msgspec.structs.replace(
        alias, target_key_id=other.key_id, last_updated_date=alias.last_updated_date + 60
    )
    await store.aliases.update(moved)
    assert await store.aliases.get(ACCOUNT, REGION, "alias/orders") == moved


async def test_update_unknown_alias_or_target_raises_key_error(store: Store) -> None:
    key = await _stored_key(store)
    with pytest.raises(KeyError):
        await store.aliases.update(make_alias(key, "never-created"))
    alias = make_alias(key, "orders")
    await store.aliases.insert(alias)
    with pytest.raises(KeyError):
        await store.aliases.update(msgspec.structs.replace(alias, target_key_id="no-such-key"))
    assert await store.aliases.get(ACCOUNT, REGION, "alias/orders") == alias


async def test_delete(store: Store) -> None:
    key = await _stored_key(store)
    await store.aliases.insert(make_alias(key, "a"))
    kept = make_alias(key, "b")
    await store.aliases.insert(kept)
    await store.aliases.delete(ACCOUNT, REGION, "alias/a")
    assert await store.aliases.get(ACCOUNT, REGION, "alias/a") is None
    assert await store.aliases.all() == [kept]
    await store.aliases.delete(ACCOUNT, REGION, "alias/a")  # deleting again does nothing


async def test_list_pages_by_name_and_filters_by_key(store: Store) -> None:
    key, other = await _stored_key(store), await _stored_key(store)
    elsewhere = await _stored_key(store, region="us-east-1")
    for name in ("delta", "alpha", "echo", "charlie"):
        await store.aliases.insert(make_alias(key, name))
    await store.aliases.insert(make_alias(other, "bravo"))
    await store.aliases.insert(make_alias(elsewhere, "aardvark"))

    names: list[list[str]] = []
    after: str | None = None
    while page := await store.aliases.list(ACCOUNT, REGION, key_id=None, limit=2, after=after):
        names.append([alias.alias_name for alias in page])
        after = page[-1].alias_name
    assert names == [
        ["alias/alpha", "alias/bravo"],
        ["alias/charlie", "alias/delta"],
        ["alias/echo"],
    ]

    only_key = await store.aliases.list(ACCOUNT, REGION, key_id=key.key_id, limit=3, after=None)
    assert [a.alias_name for a in only_key] == ["alias/alpha", "alias/charlie", "alias/delta"]
    rest = await store.aliases.list(
        ACCOUNT, REGION, key_id=key.key_id, limit=3, after="alias/delta"
    )
    assert [a.alias_name for a in rest] == ["alias/echo"]
    # A marker whose alias is gone still pages on by name.
    after_gone = await store.aliases.list(ACCOUNT, REGION, key_id=None, limit=10, after="alias/bz")
    assert [a.alias_name for a in after_gone] == ["alias/charlie", "alias/delta", "alias/echo"]
    with pytest.raises(ValueError, match="limit"):
        await store.aliases.list(ACCOUNT, REGION, key_id=None, limit=0, after=None)


async def test_all_is_ordered(store: Store) -> None:
    here = await _stored_key(store)
    there = await _stored_key(store, region="ap-south-1")
    await store.aliases.insert(make_alias(here, "b"))
    await store.aliases.insert(make_alias(there, "c"))
    await store.aliases.insert(make_alias(here, "a"))
    assert [(a.region, a.alias_name) for a in await store.aliases.all()] == [
        ("ap-south-1", "alias/c"),
        (REGION, "alias/a"),
        (REGION, "alias/b"),
    ]
