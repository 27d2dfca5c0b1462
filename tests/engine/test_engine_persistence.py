"""What survives a restart, and what must never be written down: plaintext key material."""

from __future__ import annotations

import hmac
import pathlib
import stat
from collections.abc import Mapping
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import kms_actors
from kms_actors import FakeClock
from tests.engine.engine_support import (
    DAY,
    error_of,
    eventually,
    is_gone,
    new_key,
    without_metadata,
)


async def _snapshot(kms: Any, key_ids: list[str]) -> dict[str, Any]:
    """Everything the API shows about these keys and the account's aliases."""
    return {
        "describe": [(await kms.describe_key(KeyId=k))["KeyMetadata"] for k in key_ids],
        "tags": [without_metadata(await kms.list_resource_tags(KeyId=k)) for k in key_ids],
        "aliases": without_metadata(await kms.list_aliases()),
        "keys": without_metadata(await kms.list_keys()),
    }


@pytest.mark.anyio
async def test_everything_survives_a_restart(data_dir: pathlib.Path, clock: FakeClock) -> None:
    context = {"app": "persistence"}
    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        alpha = (
            await new_key(kms, Description="alpha", Tags=[{"TagKey": "team", "TagValue": "a"}])
        )["KeyId"]
        bravo = (await new_key(kms, Description="bravo"))["KeyId"]
        charlie = (await new_key(kms, Description="charlie"))["KeyId"]
        delta = (await new_key(kms, Description="to be renamed"))["KeyId"]
        await kms.tag_resource(
            KeyId=alpha,
            Tags=[{"TagKey": "env", "TagValue": "prod"}, {"TagKey": "team", "TagValue": "b"}],
        )
        await kms.untag_resource(KeyId=alpha, TagKeys=["nothing-here"])
        await kms.tag_resource(KeyId=delta, Tags=[{"TagKey": "gone", "TagValue": "soon"}])
        await kms.untag_resource(KeyId=delta, TagKeys=["gone"])
        await kms.update_key_description(KeyId=delta, Description="delta")
        await kms.create_alias(AliasName="alias/alpha", TargetKeyId=alpha)
        await kms.create_alias(AliasName="alias/bravo", TargetKeyId=bravo)
        await kms.create_alias(AliasName="alias/charlie", TargetKeyId=charlie)
        await kms.create_alias(AliasName="alias/moved", TargetKeyId=alpha)
        await kms.update_alias(AliasName="alias/moved", TargetKeyId=delta)
        await kms.create_alias(AliasName="alias/deleted", TargetKeyId=alpha)
        await kms.delete_alias(AliasName="alias/deleted")
        managed = (await kms.describe_key(KeyId="alias/aws/s3"))["KeyMetadata"]["KeyId"]
        blobs = {
            k: (
                await kms.encrypt(
                    KeyId=k, Plaintext=f"secret of {k}".encode(), EncryptionContext=context
                )
            )["CiphertextBlob"]
            for k in (alpha, bravo, charlie, delta, managed)
        }
        await kms.disable_key(KeyId=bravo)
        await kms.schedule_key_deletion(KeyId=charlie, PendingWindowInDays=7)
        key_ids = [alpha, bravo, charlie, delta, managed]
        before = await _snapshot(kms, key_ids)

    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        after = await _snapshot(kms, key_ids)
        assert after == before
        assert [a["AliasName"] for a in after["aliases"]["Aliases"]] == [
            "alias/alpha",
            "alias/aws/s3",
            "alias/bravo",
            "alias/charlie",
            "alias/moved",
        ]
        assert (await kms.describe_key(KeyId="alias/aws/s3"))["KeyMetadata"]["KeyId"] == managed
        for k in (alpha, delta, managed):
            decrypted = await kms.decrypt(CiphertextBlob=blobs[k], EncryptionContext=context)
            assert decrypted["Plaintext"] == f"secret of {k}".encode()
        error = await error_of(kms.decrypt(CiphertextBlob=blobs[bravo], EncryptionContext=context))
        assert error.code == "DisabledException"
        error = await error_of(
            kms.decrypt(CiphertextBlob=blobs[charlie], EncryptionContext=context)
        )
        assert error.code == "KMSInvalidStateException"
        await kms.enable_key(KeyId="alias/bravo")
        decrypted = await kms.decrypt(CiphertextBlob=blobs[bravo], EncryptionContext=context)
        assert decrypted["Plaintext"] == f"secret of {bravo}".encode()

        # The deletion scheduled before the restart still fires when its date passes.
        clock.advance(8 * DAY)
        await eventually(lambda: is_gone(kms, charlie))
        aliases = [a["AliasName"] for a in (await kms.list_aliases())["Aliases"]]
        assert "alias/charlie" not in aliases
        error = await error_of(
            kms.decrypt(CiphertextBlob=blobs[charlie], EncryptionContext=context)
        )
        assert error.code in {"InvalidCiphertextException", "NotFoundException"}

    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        assert await is_gone(kms, charlie)
        assert [k["KeyId"] for k in (await kms.list_keys())["Keys"]] == [
            alpha,
            bravo,
            delta,
            managed,
        ]
        metadata = (await kms.describe_key(KeyId=bravo))["KeyMetadata"]
        assert metadata["KeyState"] == "Enabled"


@pytest.mark.anyio
async def test_deletion_due_while_stopped_fires_on_start(
    data_dir: pathlib.Path, clock: FakeClock
) -> None:
    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        key_id = (await new_key(kms))["KeyId"]
        await kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    clock.advance(7 * DAY + 1)
    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        await eventually(lambda: is_gone(kms, key_id))
        assert await kms.service.store.keys.get(key_id) is None


# --- no plaintext key material at rest ---------------------------------------------------------
# An independent reading of the formats documented in kms_actors/hsm/_rootkey.py and _blob.py.

_WRAP_LABEL = b"kms-actors/v1/material"
_KDF_LABEL = b"kms-actors/v1/data"


def _length_prefixed(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


def _unwrap(root: bytes, arn: str, version: int, material_id: bytes, wrapped: bytes) -> bytes:
    assert len(wrapped) == 61 and wrapped[0] == 0x01
    aad = _WRAP_LABEL + _length_prefixed(arn.encode()) + version.to_bytes(4, "big") + material_id
    return AESGCM(root).decrypt(wrapped[1:13], wrapped[13:], aad)


def _canonical(context: Mapping[str, str]) -> bytes:
    pairs = sorted((k.encode(), v.encode()) for k, v in context.items())
    out = len(pairs).to_bytes(4, "big")
    for key, value in pairs:
        out += _length_prefixed(key) + _length_prefixed(value)
    return out


def _open_blob(material: bytes, arn: str, blob: bytes, context: Mapping[str, str]) -> bytes:
    header, salt, iv = blob[:45], blob[17:33], blob[33:45]
    info = (1).to_bytes(4, "big") + _KDF_LABEL + b"\x00" + salt + (256).to_bytes(4, "big")
    key = hmac.digest(material, info, "sha256")
    aad = header + _length_prefixed(arn.encode()) + _canonical(context)
    return AESGCM(key).decrypt(iv, blob[45:], aad)


def _files(data_dir: pathlib.Path) -> dict[pathlib.Path, bytes]:
    return {path: path.read_bytes() for path in sorted(data_dir.rglob("*")) if path.is_file()}


def _assert_absent(files: dict[pathlib.Path, bytes], secrets: dict[str, bytes]) -> None:
    for path, content in files.items():
        for name, secret in secrets.items():
            assert secret not in content, f"{name} found in {path.name}"


@pytest.mark.anyio
async def test_no_plaintext_key_material_in_the_data_dir(
    data_dir: pathlib.Path, clock: FakeClock
) -> None:
    secrets: dict[str, bytes] = {}
    context = {"purpose": "at-rest"}
    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        keys = [await new_key(kms, Description=f"key {i}") for i in range(3)]
        blobs: dict[str, bytes] = {}
        for i, key in enumerate(keys):
            for spec in ("AES_256", "AES_128"):
                data_key = await kms.generate_data_key(
                    KeyId=key["KeyId"], KeySpec=spec, EncryptionContext=context
                )
                secrets[f"data key {i} {spec}"] = data_key["Plaintext"]
            plaintext = f"DISTINCTIVE-PLAINTEXT-{i}-{key['KeyId']}".encode()
            secrets[f"plaintext {i}"] = plaintext
            blobs[key["KeyId"]] = (
                await kms.encrypt(
                    KeyId=key["KeyId"], Plaintext=plaintext, EncryptionContext=context
                )
            )["CiphertextBlob"]

        root_file = data_dir / "root.key"
        assert stat.S_IMODE(root_file.stat().st_mode) == 0o600
        root = root_file.read_bytes()
        assert len(root) == 32

        for i, key in enumerate(keys):
            records = await kms.service.store.materials.for_key(key["KeyId"])
            assert len(records) == 1
            record = records[0]
            material = _unwrap(root, key["Arn"], record.version, record.material_id, record.wrapped)
            assert len(material) == 32
            secrets[f"material of key {i}"] = material
            # It is the real material: it opens the key's ciphertext without the service.
            plaintext = _open_blob(material, key["Arn"], blobs[key["KeyId"]], context)
            assert plaintext == secrets[f"plaintext {i}"]
        await anyio.sleep(0)
        open_files = _files(data_dir)
        assert any(p.name.endswith("-wal") for p in open_files), sorted(open_files)
        _assert_absent(open_files, secrets)
        _assert_absent({p: c for p, c in open_files.items() if p != root_file}, {"root": root})

    closed_files = _files(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for path in closed_files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path.name
    _assert_absent(closed_files, secrets)
    _assert_absent({p: c for p, c in closed_files.items() if p != root_file}, {"root": root})
    assert stat.S_IMODE(root_file.stat().st_mode) == 0o600
