"""The engine on Trio: the same service, a different event loop."""

from __future__ import annotations

import pathlib

import anyio
import pytest
import trio

import kms_actors
from kms_actors import FakeClock
from tests.engine.engine_support import DAY, error_of, eventually, is_gone, new_key


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_scenario_on_trio(
    anyio_backend: str, data_dir: pathlib.Path, clock: FakeClock
) -> None:
    assert trio.lowlevel.current_root_task() is not None  # really running on Trio
    context = {"loop": "trio"}
    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        key_id = (await new_key(kms, Description="on trio"))["KeyId"]
        doomed = (await new_key(kms, Description="doomed"))["KeyId"]
        await kms.create_alias(AliasName="alias/trio", TargetKeyId=key_id)
        blobs: list[bytes] = []

        async def encrypt(i: int) -> None:
            response = await kms.encrypt(
                KeyId="alias/trio", Plaintext=f"message {i}".encode(), EncryptionContext=context
            )
            blobs.append(response["CiphertextBlob"])

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(encrypt, i)
        plaintexts = {
            (await kms.decrypt(CiphertextBlob=blob, EncryptionContext=context))["Plaintext"]
            for blob in blobs
        }
        assert plaintexts == {f"message {i}".encode() for i in range(20)}
        assert (await kms.describe_key(KeyId="alias/trio"))["KeyMetadata"]["KeyId"] == key_id
        await kms.disable_key(KeyId="alias/trio")
        error = await error_of(kms.encrypt(KeyId="alias/trio", Plaintext=b"x"))
        assert error.code == "DisabledException"
        await kms.enable_key(KeyId="alias/trio")
        error = await error_of(kms.decrypt(CiphertextBlob=blobs[0]))
        assert error.code == "InvalidCiphertextException"
        await kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
        clock.advance(7 * DAY)
        await eventually(lambda: is_gone(kms, doomed))

    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        aliases = (await kms.list_aliases())["Aliases"]
        assert [(a["AliasName"], a["TargetKeyId"]) for a in aliases] == [("alias/trio", key_id)]
        decrypted = await kms.decrypt(CiphertextBlob=blobs[-1], EncryptionContext=context)
        assert decrypted["Plaintext"].startswith(b"message ")
        assert await is_gone(kms, doomed)
