"""The HSM pool on asyncio and Trio: inline and batched symmetric jobs, threads, shutdown."""

from __future__ import annotations

import os
import threading

import anyio
import pytest

from kms_actors.errors import InvalidCiphertextException, KMSInternalException
from kms_actors.hsm import (
    INVALID_CIPHERTEXT,
    HsmPool,
    Material,
    RootKey,
    blob_material_id,
    open_hsm_pool,
)
from kms_actors.hsm._pool import MAX_BATCH
from tests.hsm.hsm_support import ARN, OTHER_ARN, random_root, until

pytestmark = pytest.mark.anyio

both_modes = pytest.mark.parametrize("inline", [True, False], ids=["inline", "batched"])


async def exercise(pool: HsmPool) -> None:
    """Run every recipe once and check the results agree with each other."""
    material, wrapped = await pool.new_material(ARN, 1)
    for size in (0, 1, 256, 4096):
        plaintext = os.urandom(size)
        blob = await pool.encrypt(material, plaintext, {"a": "1"})
        assert blob_material_id(blob) == material.material_id
        assert pool.blob_material_id(blob) == material.material_id
        assert await pool.decrypt(material, blob, {"a": "1"}) == plaintext
    again = await pool.unwrap(ARN, 1, material.material_id, wrapped)
    key, blob = await pool.generate_data_key(again, 32, {"b": "2"})
    assert len(key) == 32
    assert await pool.decrypt(material, blob, {"b": "2"}) == key
    assert len(await pool.random(1024)) == 1024
    assert await pool.random(0) == b""


@both_modes
async def test_recipes(root: RootKey, inline: bool) -> None:
    async with open_hsm_pool(root, inline_symmetric=inline) as pool:
        await exercise(pool)
        stats = pool.stats()
    symmetric = 4 + 4 + 1 + 1 + 2  # encrypts, decrypts, data key + its decrypt, randoms
    if inline:
        assert stats == {"jobs_inline": symmetric, "jobs_on_threads": 2, "thread_hops": 2,
                         "batches": 0}  # fmt: skip
    else:
        assert stats["jobs_inline"] == 0
        assert stats["jobs_on_threads"] == symmetric + 2
        assert stats["batches"] == symmetric  # one caller: every batch holds one job
        assert stats["thread_hops"] == symmetric + 2


@both_modes
async def test_failures_have_one_fixed_message(root: RootKey, inline: bool) -> None:
    async with open_hsm_pool(root, inline_symmetric=inline) as pool:
        material, _ = await pool.new_material(ARN, 1)
        other, _ = await pool.new_material(ARN, 2)
        blob = await pool.encrypt(material, b"secret", {"ab": "c"})
        tampered = bytearray(blob)
        tampered[-1] ^= 1
        attempts = [
            (material, blob, {"a": "bc"}),
            (material, blob, None),
            (other, blob, {"ab": "c"}),
            (material, bytes(tampered), {"ab": "c"}),
            (material, blob[:60], {"ab": "c"}),
        ]
        for material_, blob_, context in attempts:
            with pytest.raises(InvalidCiphertextException) as info:
                await pool.decrypt(material_, blob_, context)
            assert info.value.message == INVALID_CIPHERTEXT


@both_modes
async def test_unwrap_failure_is_generic(root: RootKey, inline: bool) -> None:
    async with open_hsm_pool(root, inline_symmetric=inline) as pool:
        material, wrapped = await pool.new_material(ARN, 1)
        for key_arn, version in ((OTHER_ARN, 1), (ARN, 2)):
            with pytest.raises(KMSInternalException) as info:
                await pool.unwrap(key_arn, version, material.material_id, wrapped)
            assert info.value.message == KMSInternalException().message
    async with open_hsm_pool(random_root(), inline_symmetric=inline) as other_root:
        with pytest.raises(KMSInternalException):
            await other_root.unwrap(ARN, 1, material.material_id, wrapped)


async def test_batched_matches_inline(root: RootKey) -> None:
    async with (
        open_hsm_pool(root, inline_symmetric=True) as inline,
        open_hsm_pool(root, inline_symmetric=False) as batched,
    ):
        material, wrapped = await inline.new_material(ARN, 1)
        twin = await batched.unwrap(ARN, 1, material.material_id, wrapped)
        plaintext = os.urandom(100)
        context = {"tenant": "t"}
        from_batched = await batched.encrypt(twin, plaintext, context)
        from_inline = await inline.encrypt(material, plaintext, context)
        assert await inline.decrypt(material, from_batched, context) == plaintext
        assert await batched.decrypt(twin, from_inline, context) == plaintext


async def test_concurrent_jobs_share_hops_and_errors_stay_per_job(root: RootKey) -> None:
    jobs = 200
    results: dict[int, bytes | Exception] = {}
    async with open_hsm_pool(root, inline_symmetric=False) as pool:
        material, _ = await pool.new_material(ARN, 1)
        good = await pool.encrypt(material, b"ok", None)
        hops_before = pool.stats()["thread_hops"]

        async def decrypt(i: int) -> None:
            blob = good if i % 2 else good[:-1] + bytes([good[-1] ^ 1])
            try:
                results[i] = await pool.decrypt(material, blob, None)
            except InvalidCiphertextException as exc:
                results[i] = exc

        async with anyio.create_task_group() as tg:
            for i in range(jobs):
                tg.start_soon(decrypt, i)
        stats = pool.stats()
    for i, result in results.items():
        if i % 2:
            assert result == b"ok"
        else:
            assert isinstance(result, InvalidCiphertextException)
            assert result.message == INVALID_CIPHERTEXT
    assert len(results) == jobs
    hops = stats["thread_hops"] - hops_before
    assert -(-jobs // MAX_BATCH) <= hops < jobs // 4  # batches really are shared


async def test_shutdown_answers_every_queued_job(root: RootKey) -> None:
    started, gate = threading.Event(), threading.Event()
    answers: dict[int, bytes | Exception] = {}

    def blocking() -> bytes:
        started.set()
        gate.wait(10)
        return b"finished"

    async with (
        anyio.create_task_group() as tg,
        open_hsm_pool(root, workers=1, inline_symmetric=False) as pool,
    ):
        material, _ = await pool.new_material(ARN, 1)

        async def call(i: int) -> None:
            try:
                if i == 0:
                    answers[i] = await pool._batched(blocking)
                else:
                    answers[i] = await pool.encrypt(material, b"queued", None)
            except KMSInternalException as exc:
                answers[i] = exc

        tg.start_soon(call, 0)
        await anyio.to_thread.run_sync(started.wait, 10)
        for i in range(1, 6):
            tg.start_soon(call, i)
        assert pool._send is not None
        send = pool._send
        await until(lambda: send.statistics().current_buffer_used == 5)
        # Let the running batch finish, but leave the pool before the drainer can take
        # the queued jobs: no checkpoint between here and the pool's exit.
        gate.set()
    assert answers[0] == b"finished"
    for i in range(1, 6):
        assert isinstance(answers[i], KMSInternalException)


@both_modes
async def test_closed_pool_refuses_work(root: RootKey, inline: bool) -> None:
    async with open_hsm_pool(root, inline_symmetric=inline) as pool:
        material, wrapped = await pool.new_material(ARN, 1)
    with pytest.raises(KMSInternalException):
        await pool.encrypt(material, b"x", None)
    with pytest.raises(KMSInternalException):
        await pool.random(8)
    with pytest.raises(KMSInternalException):
        await pool.unwrap(ARN, 1, material.material_id, wrapped)


@both_modes
async def test_caller_exception_passes_through_unwrapped(root: RootKey, inline: bool) -> None:
    with pytest.raises(LookupError, match="mine"):
        async with open_hsm_pool(root, inline_symmetric=inline):
            raise LookupError("mine")


@both_modes
async def test_outer_cancellation_closes_cleanly(root: RootKey, inline: bool) -> None:
    with anyio.CancelScope() as scope:
        async with open_hsm_pool(root, inline_symmetric=inline) as pool:
            material, _ = await pool.new_material(ARN, 1)
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    with pytest.raises(KMSInternalException):
        await pool.encrypt(material, b"x", None)


async def test_cancelled_caller_loses_only_its_reply(root: RootKey) -> None:
    async with open_hsm_pool(root, inline_symmetric=False) as pool:
        material, _ = await pool.new_material(ARN, 1)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await pool.encrypt(material, b"x", None)
        assert await pool.decrypt(material, await pool.encrypt(material, b"y", None), None) == (
            b"y"
        )


async def test_argument_checks(root: RootKey, material: Material) -> None:
    with pytest.raises(ValueError):
        async with open_hsm_pool(root, workers=0):
            pass
    async with open_hsm_pool(root) as pool:
        with pytest.raises(ValueError):
            await pool.generate_data_key(material, 0, None)
        with pytest.raises(ValueError):
            await pool.random(-1)
