"""The materials repository: versions, lookups by material id, rotation atomicity."""

from __future__ import annotations

import msgspec
import pytest

from kms_actors.store import MaterialExists, Store

from ._factories import make_key, make_material

pytestmark = pytest.mark.anyio


async def test_add_version_with_key_update(store: Store) -> None:
    key = make_key()
    first = make_material(key)
    await store.keys.insert(key, first)
    second = make_material(key, 2)
    rotated = msgspec.structs.replace(key, current_version=2, next_rotation_date=1_800_000_000.0)
    await store.materials.add(second, rotated)
    assert await store.keys.get(key.key_id) == rotated
    assert await store.materials.for_key(key.key_id) == [first, second]


async def test_add_without_key_update(store: Store) -> None:
    key = make_key()
    await store.keys.insert(key, make_material(key))
    await store.materials.add(make_material(key, 2))
    assert await store.keys.get(key.key_id) == key


async def test_for_key_is_ordered_by_version(store: Store) -> None:
    key = make_key()
    materials = [make_material(key, version) for version in (1, 3, 2)]
    await store.keys.insert(key, materials[0])
    for material in materials[1:]:
        await store.materials.add(material)
    assert [m.version for m in await store.materials.for_key(key.key_id)] == [1, 2, 3]
    assert await store.materials.for_key("no-such-key") == []


async def test_find_by_material_id(store: Store) -> None:
    key = make_key()
    material = make_material(key)
    await store.keys.insert(key, material)
    found = await store.materials.find(material.material_id)
    assert found == material
    assert found is not None and isinstance(found.wrapped, bytes)
    assert await store.materials.find(b"\x00" * 16) is None


async def test_duplicate_version_rolls_back_the_key_update(store: Store) -> None:
    key = make_key()
    first = make_material(key)
    await store.keys.insert(key, first)
    with pytest.raises(MaterialExists):
        await store.materials.add(
            make_material(key, 1), msgspec.structs.replace(key, current_version=2)
        )
    assert await store.keys.get(key.key_id) == key
    assert await store.materials.for_key(key.key_id) == [first]


async def test_failed_key_update_rolls_back_the_material(store: Store) -> None:
    key = make_key()
    await store.keys.insert(key, make_material(key))
    second = make_material(key, 2)
    # The key row update fails (CHECK constraint) after the material row was written.
    broken = msgspec.structs.replace(key, current_version=2, multi_region=7)
    with pytest.raises(Exception, match="CHECK constraint"):
        await store.materials.add(second, broken)
    assert await store.materials.find(second.material_id) is None
    assert await store.keys.get(key.key_id) == key


async def test_material_of_unknown_key_raises_key_error(store: Store) -> None:
    with pytest.raises(KeyError):
        await store.materials.add(make_material(make_key()))


async def test_material_with_another_key_is_refused(store: Store) -> None:
    key, other = make_key(), make_key()
    await store.keys.insert(key, make_material(key))
    with pytest.raises(ValueError, match="given with key"):
        await store.materials.add(make_material(key, 2), other)
