"""The keys repository: CRUD, paging, counting, pending deletions, purge, atomicity."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import msgspec
import pytest

from kms_actors.store import KeyExists, MaterialExists, Store

from ._factories import ACCOUNT, REGION, make_alias, make_key, make_material, make_tags

pytestmark = pytest.mark.anyio


async def test_insert_and_get_round_trip_every_field(store: Store) -> None:
    key = msgspec.structs.replace(
        make_key(),
        key_state="PendingDeletion",
        key_spec="RSA_2048",
        key_usage="SIGN_VERIFY",
        origin="EXTERNAL",
        deletion_date=1_700_100_000.5,
        pending_deletion_window_in_days=7,
        current_version=3,
        multi_region=True,
        rotation_enabled=True,
        rotation_period_in_days=90,
        next_rotation_date=1_707_776_000.25,
        description="déjà vu ✓",
    )
    await store.keys.insert(key, make_material(key))
    got = await store.keys.get(key.key_id)
    assert got == key
    assert got is not None and got.multi_region is True and got.rotation_enabled is True


async def test_get_unknown_key_is_none(store: Store) -> None:
    assert await store.keys.get("no-such-key") is None


async def test_update_replaces_the_row(store: Store) -> None:
    key = make_key()
    await store.keys.insert(key, make_material(key))
    disabled = msgspec.structs.replace(key, key_state="Disabled", description="off")
    await store.keys.update(disabled)
    assert await store.keys.get(key.key_id) == disabled


async def test_update_unknown_key_raises_key_error(store: Store) -> None:
    with pytest.raises(KeyError):
        await store.keys.update(make_key())
    assert await store.keys.all_ids() == []


async def test_duplicate_key_leaves_nothing_half_written(store: Store) -> None:
    key = make_key()
    first = make_material(key)
    await store.keys.insert(key, first, make_tags(key, a="1"))
    again = make_material(key)
    with pytest.raises(KeyExists):
        await store.keys.insert(
            msgspec.structs.replace(key, description="second"), again, make_tags(key, b="2")
        )
    assert await store.keys.get(key.key_id) == key
    assert await store.materials.for_key(key.key_id) == [first]
    assert await store.materials.find(again.material_id) is None
    assert [t.tag_key for t in await store.tags.list(key.key_id)] == ["a"]


async def test_duplicate_arn_is_a_duplicate_key(store: Store) -> None:
    key = make_key()
    await store.keys.insert(key, make_material(key))
    other = msgspec.structs.replace(make_key(), arn=key.arn)
    with pytest.raises(KeyExists):
        await store.keys.insert(other, make_material(other))
    assert await store.keys.all_ids() == [key.key_id]


async def test_failed_material_rolls_back_the_key(store: Store) -> None:
    key = make_key()
    material = make_material(key)
    await store.keys.insert(key, material)
    other = make_key()
    clash = msgspec.structs.replace(make_material(other), material_id=material.material_id)
    with pytest.raises(MaterialExists):
        await store.keys.insert(other, clash, make_tags(other, a="1"))
    assert await store.keys.get(other.key_id) is None
    assert await store.tags.list(other.key_id) == []
    assert await store.keys.all_ids() == [key.key_id]


async def test_records_of_another_key_are_refused(store: Store) -> None:
    key, other = make_key(), make_key()
    with pytest.raises(ValueError, match="given for key"):
        await store.keys.insert(key, make_material(other))
    with pytest.raises(ValueError, match="given for key"):
        await store.keys.insert(key, make_material(key), make_tags(other, a="1"))
    assert await store.keys.all_ids() == []


async def test_list_pages_in_creation_order(store: Store) -> None:
    keys = [make_key() for _ in range(5)]
    elsewhere = [make_key(region="us-east-1"), make_key(account_id="444455556666")]
    for key in [keys[0], elsewhere[0], *keys[1:3], elsewhere[1], *keys[3:]]:
        await store.keys.insert(key, make_material(key))

    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await store.keys.list(ACCOUNT, REGION, limit=2, after=after)
        if not page:
            break
        pages.append([key.key_id for key in page])
        after = page[-1].key_id
    ids = [key.key_id for key in keys]
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]
    assert await store.keys.list(ACCOUNT, REGION, limit=100, after=None) == keys


async def test_list_with_unknown_marker_raises_key_error(store: Store) -> None:
    key = make_key()
    stranger = make_key(region="us-east-1")
    for k in (key, stranger):
        await store.keys.insert(k, make_material(k))
    with pytest.raises(KeyError):
        await store.keys.list(ACCOUNT, REGION, limit=10, after="no-such-key")
    with pytest.raises(KeyError):  # a key of another region is no marker here
        await store.keys.list(ACCOUNT, REGION, limit=10, after=stranger.key_id)
    with pytest.raises(ValueError, match="limit"):
        await store.keys.list(ACCOUNT, REGION, limit=0, after=None)


async def test_count_customer_keys_counts_every_state(store: Store) -> None:
    keys = [
        make_key(),
        msgspec.structs.replace(make_key(), key_state="Disabled"),
        msgspec.structs.replace(make_key(), key_state="PendingDeletion"),
        make_key(key_manager="AWS"),
        make_key(region="us-east-1"),
        make_key(account_id="444455556666"),
    ]
    for key in keys:
        await store.keys.insert(key, make_material(key))
    assert await store.keys.count_customer_keys(ACCOUNT, REGION) == 3
    assert await store.keys.count_customer_keys(ACCOUNT, "us-east-1") == 1
    assert await store.keys.count_customer_keys("999999999999", REGION) == 0


async def test_pending_deletions(store: Store) -> None:
    later = msgspec.structs.replace(make_key(), deletion_date=2_000.0)
    sooner = msgspec.structs.replace(make_key(), deletion_date=1_000.0)
    alive = make_key()
    for key in (later, sooner, alive):
        await store.keys.insert(key, make_material(key))
    assert await store.keys.pending_deletions() == [
        (sooner.key_id, 1_000.0),
        (later.key_id, 2_000.0),
    ]
    await store.keys.update(msgspec.structs.replace(later, deletion_date=None))
    assert await store.keys.pending_deletions() == [(sooner.key_id, 1_000.0)]


async def test_purge_removes_everything_of_the_key(store: Store) -> None:
    doomed, kept = make_key(), make_key()
    for key in (doomed, kept):
        await store.keys.insert(key, make_material(key), make_tags(key, team="x"))
        await store.materials.add(make_material(key, 2))
        await store.aliases.insert(make_alias(key, f"name-{key.key_id}"))
    doomed_materials = await store.materials.for_key(doomed.key_id)

    await store.keys.purge(doomed.key_id)

    assert await store.keys.get(doomed.key_id) is None
    assert await store.materials.for_key(doomed.key_id) == []
    for material in doomed_materials:
        assert await store.materials.find(material.material_id) is None
    assert await store.tags.list(doomed.key_id) == []
    assert [a.target_key_id for a in await store.aliases.all()] == [kept.key_id]
    assert await store.keys.all_ids() == [kept.key_id]
    assert len(await store.materials.for_key(kept.key_id)) == 2
    assert len(await store.tags.list(kept.key_id)) == 1

    await store.keys.purge(doomed.key_id)  # purging again does nothing


async def test_concurrent_writers_are_serialized(store: Store) -> None:
    keys = [make_key() for _ in range(20)]
    async with anyio.create_task_group() as tg:
        for key in keys:
            tg.start_soon(store.keys.insert, key, make_material(key), make_tags(key, n="1"))
            tg.start_soon(store.keys.count_customer_keys, ACCOUNT, REGION)
    assert sorted(await store.keys.all_ids()) == sorted(key.key_id for key in keys)
    for key in keys:
        assert len(await store.materials.for_key(key.key_id)) == 1


@pytest.mark.parametrize("checkpoints", range(8))
async def test_cancelled_writer_never_half_applies(store: Store, checkpoints: int) -> None:
    key = make_key()
    tags = make_tags(key, a="1", b="2")

    async def cancel_soon(scope: anyio.CancelScope) -> None:
        for _ in range(checkpoints):
            await anyio.lowlevel.checkpoint()
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_soon, tg.cancel_scope)
        await store.keys.insert(key, make_material(key), tags)
        await anyio.sleep_forever()

    stored = await store.keys.get(key.key_id)
    materials = await store.materials.for_key(key.key_id)
    stored_tags = await store.tags.list(key.key_id)
    if stored is None:
        assert materials == [] and stored_tags == []
    else:
        assert len(materials) == 1 and stored_tags == tags
    # The connection is left with no transaction open: the store keeps working.
    other = make_key()
    await store.keys.insert(other, make_material(other))
    assert await store.keys.get(other.key_id) == other


async def test_writer_cancelled_before_it_starts_writes_nothing(store: Store) -> None:
    key = make_key()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await store.keys.insert(key, make_material(key))
    assert scope.cancelled_caught
    assert await store.keys.get(key.key_id) is None
    assert await store.keys.all_ids() == []
