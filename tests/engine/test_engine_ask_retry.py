"""A key's actor stopping between a request's lookup and its ask: the request follows the key."""

from __future__ import annotations

from typing import Any

import pytest

from kms_actors.runtime import Stop
from tests.engine.engine_support import error_of, eventually, new_key


class _StopsOnLookup(dict[str, Any]):
    """The registry's live map, stopping one key's actor right when it is looked up.

    As if the idle sweep passivated the actor between a request's lookup and its ask: the
    request finds the old actor, and its message queues behind the Stop.
    """

    def __init__(self, live: dict[str, Any], key_id: str, *, times: int) -> None:
        super().__init__(live)
        self.key_id = key_id
        self.times = times
        self.stopped: list[Any] = []

    def get(self, key: str, default: Any = None) -> Any:
        found = super().get(key, default)
        if key == self.key_id and found is not None and len(self.stopped) < self.times:
            assert found.ref.tell_nowait(Stop())
            self.stopped.append(found.ref)
        return found


def _stop_on_lookup(kms: Any, key_id: str, *, times: int = 1) -> _StopsOnLookup:
    registry = kms.service.registry
    live = _StopsOnLookup(registry.live, key_id, times=times)
    registry.live = live
    return live


async def _assert_followed(kms: Any, live: _StopsOnLookup, key_id: str) -> None:
    """The request found the old actor, which stopped; the key now has a fresh one."""
    assert len(live.stopped) == 1
    assert live[key_id].ref is not live.stopped[0]
    # The fresh actor keeps serving.
    assert (await kms.describe_key(KeyId=key_id))["KeyMetadata"]["Enabled"] is True


@pytest.mark.anyio
async def test_encrypt_follows_a_key_passivated_after_its_lookup(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    live = _stop_on_lookup(kms, key_id)
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"secret"))["CiphertextBlob"]
    await _assert_followed(kms, live, key_id)
    assert (await kms.decrypt(CiphertextBlob=blob))["Plaintext"] == b"secret"


@pytest.mark.anyio
async def test_decrypt_by_blob_follows_a_key_passivated_after_its_lookup(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    blob = (await kms.encrypt(KeyId=key_id, Plaintext=b"secret"))["CiphertextBlob"]
    live = _stop_on_lookup(kms, key_id)
    # No KeyId: the key is found by the blob's material (KeyRegistry.ask_owner).
    assert (await kms.decrypt(CiphertextBlob=blob))["Plaintext"] == b"secret"
    await _assert_followed(kms, live, key_id)


@pytest.mark.anyio
async def test_create_alias_follows_a_target_passivated_after_its_lookup(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    live = _stop_on_lookup(kms, key_id)
    # The registry actor checks the target key itself, spawning without asking itself.
    await kms.create_alias(AliasName="alias/followed", TargetKeyId=key_id)
    await _assert_followed(kms, live, key_id)
    aliases = (await kms.list_aliases(KeyId=key_id))["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/followed"]


class _StopsEveryActor(dict[str, Any]):
    """The registry's live map, stopping every actor of one key as soon as it is registered."""

    def __init__(self, live: dict[str, Any], key_id: str) -> None:
        super().__init__(live)
        self.key_id = key_id
        self.started = 0

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if key == self.key_id:
            self.started += 1
            assert value.ref.tell_nowait(Stop())


@pytest.mark.anyio
async def test_a_key_whose_actor_keeps_stopping_fails_after_a_bounded_number_of_tries(
    kms: Any,
) -> None:
    key_id = (await new_key(kms))["KeyId"]
    registry = kms.service.registry
    registry.passivate_idle(float("inf"))

    async def passivated() -> bool:
        return key_id not in registry.live

    await eventually(passivated)
    registry.live = flaky = _StopsEveryActor(registry.live, key_id)

    error = await error_of(kms.encrypt(KeyId=key_id, Plaintext=b"secret"))

    assert error.code == "KMSInternalException"
    assert flaky.started == 8  # one fresh actor per attempt, then the request gives up
    registry.live = dict(flaky)
    assert (await kms.encrypt(KeyId=key_id, Plaintext=b"secret"))["KeyId"].endswith(key_id)
