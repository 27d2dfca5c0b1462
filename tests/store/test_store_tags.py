"""The tags repository: upsert, removal, ordering, atomicity."""

from __future__ import annotations

import pytest

from kms_actors.domain.records import TagRecord
from kms_actors.store import Store

from ._factories import make_key, make_material, make_tags

pytestmark = pytest.mark.anyio


async def test_put_and_list_ordered_by_tag_key(store: Store) -> None:
    key = make_key()
    await store.keys.insert(key, make_material(key))
    await store.tags.put(key.key_id, make_tags(key, zeta="1", alpha="2", mid="3"))
    assert [(t.tag_key, t.tag_value) for t in await store.tags.list(key.key_id)] == [
        ("alpha", "2"),
        ("mid", "3"),
        ("zeta", "1"),
    ]


async def test_put_replaces_the_value_of_an_existing_tag_key(store: Store) -> None:
    key = make_key()
    await store.keys.insert(key, make_material(key), make_tags(key, env="dev", team="a"))
    await store.tags.put(key.key_id, make_tags(key, env="prod"))
    assert await store.tags.list(key.key_id) == make_tags(key, env="prod", team="a")


async def test_tags_are_per_key(store: Store) -> None:
    key, other = make_key(), make_key()
    await store.keys.insert(key, make_material(key), make_tags(key, env="dev"))
    await store.keys.insert(other, make_material(other), make_tags(other, env="prod"))
    assert await store.tags.list(key.key_id) == make_tags(key, env="dev")
    assert await store.tags.list(other.key_id) == make_tags(other, env="prod")
    assert await store.tags.list("no-such-key") == []


async def test_remove_ignores_missing_tag_keys(store: Store) -> None:
    key = make_key()
    await store.keys.insert(key, make_material(key), make_tags(key, a="1", b="2", c="3"))
    await store.tags.remove(key.key_id, ["a", "c", "never-set"])
    assert await store.tags.list(key.key_id) == make_tags(key, b="2")
    await store.tags.remove(key.key_id, [])
    assert await store.tags.list(key.key_id) == make_tags(key, b="2")


def _orphan_tags() -> list[TagRecord]:
    return [TagRecord(key_id="no-such-key", tag_key="a", tag_value="1")]


async def test_put_for_unknown_key_raises_key_error(store: Store) -> None:
    with pytest.raises(KeyError):
        await store.tags.put(
            "no-such-key", [TagRecord(key_id="no-such-key", tag_key="a", tag_value="1")]
        )
    assert await store.tags.list("no-such-key") == []


async def test_put_is_one_transaction(store: Store) -> None:
    key = make_key()
    await store.keys.insert(key, make_material(key), make_tags(key, a="old"))
    # The third row breaks NOT NULL after two rows were written; none of them may stay.
    bad = [
        TagRecord(key_id=key.key_id, tag_key="a", tag_value="new"),
        TagRecord(key_id=key.key_id, tag_key="b", tag_value="2"),
        TagRecord(key_id=key.key_id, tag_key="c", tag_value=None),  # type: ignore[arg-type]
    ]
    with pytest.raises(Exception, match="NOT NULL"):
        await store.tags.put(key.key_id, bad)
    assert await store.tags.list(key.key_id) == make_tags(key, a="old")


async def test_tags_of_another_key_are_refused(store: Store) -> None:
    key, other = make_key(), make_key()
    await store.keys.insert(key, make_material(key))
    with pytest.raises(ValueError, match="given for key"):
        await store.tags.put(key.key_id, make_tags(other, a="1"))
    assert await store.tags.list(key.key_id) == []
