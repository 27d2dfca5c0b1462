"""The root key (file and base64), material wrapping, and that nothing secret leaks via repr."""

from __future__ import annotations

import base64
import copy
import os
import pathlib
import pickle
import stat
from collections.abc import Iterator

import pytest

from kms_actors.errors import KMSInternalException
from kms_actors.hsm import Material, RootKey
from kms_actors.hsm._material import generate_material
from kms_actors.hsm._rootkey import _create_key_file, unwrap_material, wrap_material
from tests.hsm.hsm_support import ARN, OTHER_ARN, random_root

GENERIC = KMSInternalException().message


def same_root(a: RootKey, b: RootKey) -> bool:
    """Tell whether two root keys are the same key, without looking at either."""
    material = generate_material(ARN, 1)
    try:
        unwrap_material(b, ARN, 1, material.material_id, wrap_material(a, material))
    except KMSInternalException:
        return False
    return True


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_key_file_created_0600_in_a_0700_dir(tmp_path: pathlib.Path, umask_zero: None) -> None:
    path = tmp_path / "state" / "root.key"
    root = RootKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.stat().st_size == 32
    assert sorted(p.name for p in path.parent.iterdir()) == ["root.key"]  # no temp file left
    assert same_root(root, RootKey.load_or_create(path))
    assert path.stat().st_size == 32


def test_reload_is_identical_and_not_rewritten(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "root.key"
    first = RootKey.load_or_create(path)
    raw = path.read_bytes()
    second = RootKey.load_or_create(path)
    assert path.read_bytes() == raw
    assert same_root(first, second)
    assert same_root(second, RootKey.from_base64(base64.b64encode(raw).decode()))
    assert not same_root(first, random_root())


def test_existing_file_is_never_replaced(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "root.key"
    RootKey.load_or_create(path)
    raw = path.read_bytes()
    assert _create_key_file(path, os.urandom(32)) is False
    assert path.read_bytes() == raw
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root.key"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o610])
def test_key_file_open_to_others_is_refused(tmp_path: pathlib.Path, mode: int) -> None:
    path = tmp_path / "root.key"
    RootKey.load_or_create(path)
    path.chmod(mode)
    with pytest.raises(ValueError, match="group or others") as info:
        RootKey.load_or_create(path)
    assert "\n" not in str(info.value)


def test_read_only_key_file_is_accepted(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "root.key"
    root = RootKey.load_or_create(path)
    path.chmod(0o400)
    assert same_root(root, RootKey.load_or_create(path))


@pytest.mark.parametrize("size", [0, 31, 33, 44, 45])
def test_key_file_of_wrong_size_is_refused(tmp_path: pathlib.Path, size: int) -> None:
    path = tmp_path / "root.key"
    path.write_bytes(os.urandom(size))
    path.chmod(0o600)
    with pytest.raises(ValueError, match="exactly 32 raw bytes") as info:
        RootKey.load_or_create(path)
    assert "\n" not in str(info.value)
    assert path.stat().st_size == size  # refused, never "repaired"


def test_key_path_that_is_a_directory_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "root.key"
    path.mkdir(mode=0o700)
    with pytest.raises(ValueError, match="not a regular file"):
        RootKey.load_or_create(path)


def test_from_base64() -> None:
    raw = os.urandom(32)
    encoded = base64.b64encode(raw).decode()
    assert same_root(RootKey.from_base64(encoded), RootKey.from_base64(f"  {encoded}\n"))
    for bad in ("", "!!!not base64!!!", base64.b64encode(raw[:16]).decode(), encoded + "AAAA"):
        with pytest.raises(ValueError) as info:
            RootKey.from_base64(bad)
        assert str(info.value) in {"root key is not valid base64", "root key must be 32 bytes"}


def test_reprs_leak_nothing(tmp_path: pathlib.Path) -> None:
    raw = os.urandom(32)
    root = RootKey.from_base64(base64.b64encode(raw).decode())
    secret = os.urandom(32)
    material = Material(os.urandom(16), ARN, 3, secret)
    for value, text in ((raw, repr(root)), (secret, repr(material)), (secret, str(material))):
        for form in (value.hex(), repr(value), base64.b64encode(value).decode(), str(list(value))):
            assert form not in text
    assert "redacted" in repr(root)
    assert repr(material).startswith("Material(key_arn=")
    assert material.material_id.hex() in repr(material)
    assert not [name for name in dir(material) if "secret" in name and not name.startswith("_")]


@pytest.mark.parametrize("make", [random_root, lambda: generate_material(ARN, 1)])
def test_secrets_cannot_be_pickled_or_copied(make: object) -> None:
    assert callable(make)
    value = make()
    with pytest.raises(TypeError):
        pickle.dumps(value)
    with pytest.raises(TypeError):
        copy.copy(value)
    with pytest.raises(TypeError):
        copy.deepcopy(value)


def test_material_handle_is_read_only(material: Material) -> None:
    with pytest.raises(AttributeError):
        material.key_arn = OTHER_ARN  # type: ignore[misc]
    with pytest.raises(AttributeError):
        material.version = 2  # type: ignore[misc]


def test_wrapped_material_hides_the_material(root: RootKey) -> None:
    material = generate_material(ARN, 4)
    wrapped = wrap_material(root, material)
    assert len(wrapped) == 61
    assert wrapped[0] == 0x01
    assert material._secret not in wrapped
    assert wrap_material(root, material) != wrapped  # fresh nonce every time
    back = unwrap_material(root, ARN, 4, material.material_id, wrapped)
    assert back._secret == material._secret
    assert (back.key_arn, back.version, back.material_id) == (ARN, 4, material.material_id)


def test_unwrap_binds_arn_version_id_and_root(root: RootKey) -> None:
    material = generate_material(ARN, 4)
    wrapped = wrap_material(root, material)
    tampered = bytearray(wrapped)
    tampered[20] ^= 1
    wrong = [
        (root, OTHER_ARN, 4, material.material_id, wrapped),
        (root, ARN, 5, material.material_id, wrapped),
        (root, ARN, 4, os.urandom(16), wrapped),
        (root, ARN, 4, material.material_id[:15], wrapped),
        (random_root(), ARN, 4, material.material_id, wrapped),
        (root, ARN, 4, material.material_id, bytes(tampered)),
        (root, ARN, 4, material.material_id, wrapped[:-1]),
        (root, ARN, 4, material.material_id, b"\x02" + wrapped[1:]),
        (root, ARN, 4, material.material_id, b""),
    ]
    for args in wrong:
        with pytest.raises(KMSInternalException) as info:
            unwrap_material(*args)
        assert info.value.message == GENERIC
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__
