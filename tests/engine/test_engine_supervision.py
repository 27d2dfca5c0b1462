"""One-for-one supervision of key actors, with crashes injected through the fault hook."""

from __future__ import annotations

import pathlib
from typing import Any

import anyio
import pytest

import kms_actors
from kms_actors import FakeClock, KmsError
from kms_actors.keys.messages import Admit, AdmitAnd, Disable
from tests.engine.engine_support import error_of, eventually, new_key


def _material_id(blob: bytes) -> bytes:
    """The material id a v1 blob names (bytes 1-16 of the header)."""
    return blob[1:17]


def _crash_on(material_id: bytes, *, times: int | None) -> tuple[list[object], Any]:
    """A fault hook that crashes the actor admitting a blob of ``material_id``."""
    crashes: list[object] = []

    def hook(message: object) -> None:
        if not isinstance(message, Admit | AdmitAnd) or message.material_id != material_id:
            return
        if times is None or len(crashes) < times:
            crashes.append(message)
            raise RuntimeError("injected fault")

    return crashes, hook


@pytest.mark.anyio
async def test_a_crash_restarts_only_that_key(kms: Any) -> None:
    a = (await new_key(kms, Description="A"))["KeyId"]
    b = (await new_key(kms, Description="B"))["KeyId"]
    await kms.tag_resource(KeyId=a, Tags=[{"TagKey": "k", "TagValue": "v"}])
    await kms.update_key_description(KeyId=a, Description="A, described")
    blob_a = (await kms.encrypt(KeyId=a, Plaintext=b"a"))["CiphertextBlob"]
    blob_b = (await kms.encrypt(KeyId=b, Plaintext=b"b"))["CiphertextBlob"]
    before_a = (await kms.describe_key(KeyId=a))["KeyMetadata"]
    registry = kms.service.registry
    supervisor = registry.supervisor
    ref_a, ref_b = registry.live[a].ref, registry.live[b].ref
    restarts = supervisor.restarts
    crashes, hook = _crash_on(_material_id(blob_a), times=1)
    registry.deps.fault_hook = hook
    b_results: list[bytes] = []

    async def use_b() -> None:
        for _ in range(50):
            blob = (await kms.encrypt(KeyId=b, Plaintext=b"b"))["CiphertextBlob"]
            b_results.append((await kms.decrypt(CiphertextBlob=blob))["Plaintext"])
            await anyio.sleep(0)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(use_b)
            await anyio.sleep(0)
            error = await error_of(kms.decrypt(CiphertextBlob=blob_a))

    assert error.code == "KMSInternalException"
    assert len(crashes) == 1
    assert supervisor.restarts == restarts + 1
    # A is back, restarted from the store with the same state, behind the same mailbox.
    assert (await kms.decrypt(CiphertextBlob=blob_a))["Plaintext"] == b"a"
    assert (await kms.describe_key(KeyId=a))["KeyMetadata"] == before_a
    tags = (await kms.list_resource_tags(KeyId=a))["Tags"]
    assert tags == [{"TagKey": "k", "TagValue": "v"}]
    assert registry.live[a].ref is ref_a
    # B never noticed.
    assert b_results == [b"b"] * 50
    assert registry.live[b].ref is ref_b
    assert (await kms.decrypt(CiphertextBlob=blob_b))["Plaintext"] == b"b"
    assert supervisor.restarts == restarts + 1


@pytest.mark.anyio
async def test_crash_of_a_state_change_leaves_the_stored_state(kms: Any) -> None:
    key_id = (await new_key(kms))["KeyId"]
    registry = kms.service.registry
    restarts = registry.supervisor.restarts

    def hook(message: object) -> None:
        if isinstance(message, Disable):
            raise RuntimeError("injected fault")

    registry.deps.fault_hook = hook
    error = await error_of(kms.disable_key(KeyId=key_id))
    registry.deps.fault_hook = None
    assert error.code == "KMSInternalException"
    assert registry.supervisor.restarts == restarts + 1
    assert (await kms.describe_key(KeyId=key_id))["KeyMetadata"]["KeyState"] == "Enabled"
    await kms.disable_key(KeyId=key_id)
    assert (await kms.describe_key(KeyId=key_id))["KeyMetadata"]["KeyState"] == "Disabled"


@pytest.mark.anyio
async def test_past_the_restart_budget_every_ask_is_answered(
    data_dir: pathlib.Path, clock: FakeClock
) -> None:
    overrides = {"keys.max_restarts": 1}
    async with kms_actors.open_kms(data_dir, clock=clock, overrides=overrides) as kms:
        assert kms.service.settings.keys.max_restarts == 1
        a = (await new_key(kms, Description="A"))["KeyId"]
        b = (await new_key(kms, Description="B"))["KeyId"]
        blob_a = (await kms.encrypt(KeyId=a, Plaintext=b"a"))["CiphertextBlob"]
        registry = kms.service.registry
        ref_b = registry.live[b].ref
        restarts = registry.supervisor.restarts
        crashes, hook = _crash_on(_material_id(blob_a), times=None)
        registry.deps.fault_hook = hook
        codes: list[str] = []

        async def decrypt_a() -> None:
            try:
                await kms.decrypt(CiphertextBlob=blob_a)
            except KmsError as error:
                codes.append(error.code)
            else:
                codes.append("succeeded")

        with anyio.fail_after(5):  # a dropped ask would hang here
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(decrypt_a)

        assert codes == ["KMSInternalException"] * 20
        assert len(crashes) >= 2  # at least the crash and the one past the budget
        assert len(crashes) < 20  # queued asks were answered, not each one crashed
        assert registry.supervisor.restarts > restarts
        assert a not in registry.live  # stopped for good

        # A later request respawns the key, and it works.
        registry.deps.fault_hook = None
        with anyio.fail_after(5):
            assert (await kms.decrypt(CiphertextBlob=blob_a))["Plaintext"] == b"a"
            assert (await kms.describe_key(KeyId=a))["KeyMetadata"]["Description"] == "A"
            blob = (await kms.encrypt(KeyId=b, Plaintext=b"b"))["CiphertextBlob"]
            assert (await kms.decrypt(CiphertextBlob=blob))["Plaintext"] == b"b"
        assert registry.live[b].ref is ref_b


@pytest.mark.anyio
async def test_a_crashing_actor_does_not_hang_waiting_callers(
    data_dir: pathlib.Path, clock: FakeClock
) -> None:
    """Crashing every message of every key: every caller still gets an answer."""
    overrides = {"keys.max_restarts": 0}
    async with kms_actors.open_kms(data_dir, clock=clock, overrides=overrides) as kms:
        key_id = (await new_key(kms))["KeyId"]

        def hook(message: object) -> None:
            raise RuntimeError("injected fault")

        kms.service.registry.deps.fault_hook = hook
        codes: list[str] = []

        async def describe() -> None:
            codes.append((await error_of(kms.describe_key(KeyId=key_id))).code)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(describe)
        assert codes == ["KMSInternalException"] * 10
        kms.service.registry.deps.fault_hook = None
        assert (await kms.describe_key(KeyId=key_id))["KeyMetadata"]["KeyId"] == key_id


@pytest.mark.anyio
async def test_passivation_is_invisible_to_callers(
    data_dir: pathlib.Path, clock: FakeClock
) -> None:
    overrides = {"keys.passivate_after_seconds": 0.02}
    async with kms_actors.open_kms(data_dir, clock=clock, overrides=overrides) as kms:
        registry = kms.service.registry
        hot = (await new_key(kms, Description="hot"))["KeyId"]
        cold = (await new_key(kms, Description="cold"))["KeyId"]
        await kms.disable_key(KeyId=cold)
        blob = (await kms.encrypt(KeyId=hot, Plaintext=b"hot"))["CiphertextBlob"]

        async def cold_is_passivated() -> bool:
            return cold not in registry.live

        await eventually(cold_is_passivated)
        # Reloaded on demand, with its state.
        metadata = (await kms.describe_key(KeyId=cold))["KeyMetadata"]
        assert (metadata["Description"], metadata["KeyState"]) == ("cold", "Disabled")

        # Requests racing with passivation are never lost or refused.
        failures: list[str] = []

        async def use_hot() -> None:
            with anyio.move_on_after(0.5):
                while True:
                    try:
                        assert (await kms.decrypt(CiphertextBlob=blob))["Plaintext"] == b"hot"
                    except KmsError as error:
                        failures.append(error.code)
                    await anyio.sleep(0.005)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(use_hot)
        assert failures == []
