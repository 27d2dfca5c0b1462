"""Build a KeyActor from the store: record, tags, and every material version unwrapped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kms_actors.domain.records import GrantRecord, KeyRecord, MaterialRecord, TagRecord
from kms_actors.errors import NotFoundException
from kms_actors.keys.actor import KeyActor, KeyDeps


async def unwrap_all(
    deps: KeyDeps, key: KeyRecord, records: list[MaterialRecord]
) -> dict[bytes, tuple[MaterialRecord, Any]]:
    """Unwrap every material version of ``key`` (on the HSM pool's worker threads)."""
    materials: dict[bytes, tuple[MaterialRecord, Any]] = {}
    for record in records:
        material = await deps.hsm.unwrap(
            key.arn, record.version, record.material_id, record.wrapped
        )
        materials[record.material_id] = (record, material)
    return materials


async def load_actor(deps: KeyDeps, key_id: str) -> KeyActor:
    """Load a key's actor from the store.

    Raises:
        NotFoundException: The key no longer exists.
    """
    key = await deps.store.keys.get(key_id)
    if key is None:
        raise NotFoundException(f"Key '{key_id}' does not exist")
    records = await deps.store.materials.for_key(key_id)
    tags: list[TagRecord] = await deps.store.tags.list(key_id)
    grants: list[GrantRecord] = await deps.store.grants.for_key(key_id)
    return build_actor(deps, key, await unwrap_all(deps, key, records), tags, grants)


def build_actor(
    deps: KeyDeps,
    key: KeyRecord,
    materials: dict[bytes, tuple[MaterialRecord, Any]],
    tags: list[TagRecord],
    grants: Sequence[GrantRecord] = (),
) -> KeyActor:
    """Build a key actor from already loaded state."""
    return KeyActor(
        key=key,
        materials=materials,
        tags=tags,
        deps=deps,
        grants=grants,
    )
