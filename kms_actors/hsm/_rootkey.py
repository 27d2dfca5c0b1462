"""The root key and the wrapping of key material under it.

Root key file format: exactly 32 raw random bytes, no encoding, no newline (create one by hand
with ``head -c 32 /dev/urandom``). The file must be a regular file with no permission bits for
group or others (0600 or 0400); anything else is refused at start. ``RootKey.from_base64``
takes the same 32 bytes, base64-encoded, e.g. from an environment variable.

Wrapped material format v1: ``0x01 || nonce (12) || AES-256-GCM(material) (32) || tag (16)``,
61 bytes, with associated data
``b"kms-actors/v1/material" || len(key ARN) (4) || key ARN || version (4) || material_id``, so
a wrapped blob moved to another key, version or material id does not unwrap.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import pathlib
import stat
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_actors.errors import KMSInternalException
from kms_actors.hsm._material import MATERIAL_BYTES, MATERIAL_ID_BYTES, Material, length_prefixed

ROOT_KEY_BYTES = 32
_WRAP_VERSION = b"\x01"
_WRAP_NONCE_BYTES = 12
WRAPPED_BYTES = 1 + _WRAP_NONCE_BYTES + MATERIAL_BYTES + 16
_WRAP_LABEL = b"kms-actors/v1/material"


class RootKey:
    """The 32-byte key that wraps all key material at rest; never shown, never exported."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != ROOT_KEY_BYTES:
            raise ValueError(f"root key must be {ROOT_KEY_BYTES} bytes")
        self._aead = AESGCM(bytes(key))

    @classmethod
    def load_or_create(cls, path: pathlib.Path) -> RootKey:
        """Load the root key file at ``path``, creating it (0600, parent 0700) if missing.

        Raises:
            ValueError: the file is not a regular file, is open to group or others, or is not
                exactly 32 bytes long (one line saying which).
        """
        try:
            return cls(_read_key_file(path))
        except FileNotFoundError:
            pass
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = os.urandom(ROOT_KEY_BYTES)
        if not _create_key_file(path, key):  # another process created it first: use theirs
            key = _read_key_file(path)
        return cls(key)

    @classmethod
    def from_base64(cls, value: str) -> RootKey:
        """Return the root key given as base64 (e.g. from an environment variable).

        Raises:
            ValueError: the value is not base64 of exactly 32 bytes.
        """
        try:
            key = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("root key is not valid base64") from None
        return cls(key)

    def __repr__(self) -> str:
        return "RootKey(<redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("RootKey cannot be pickled or copied")


def _read_key_file(path: pathlib.Path) -> bytes:
    # fstat the open descriptor, not the path, so the checks apply to the file actually read;
    # O_NONBLOCK keeps a FIFO planted at the path from hanging the start.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"root key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise ValueError(
                f"root key file {path} is open to group or others (mode {mode:04o}); "
                "it must be 0600 or 0400"
            )
        if info.st_size != ROOT_KEY_BYTES:
            raise ValueError(
                f"root key file {path} must hold exactly {ROOT_KEY_BYTES} raw bytes, "
                f"it holds {info.st_size}"
            )
        key = os.read(fd, ROOT_KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != ROOT_KEY_BYTES:
        raise ValueError(f"root key file {path} changed size while being read")
    return key


def _create_key_file(path: pathlib.Path, key: bytes) -> bool:
    """Create ``path`` holding ``key``, mode 0600; return False if it already exists.

    The key is written and synced under a temporary name made with O_CREAT|O_EXCL, 0600, then
    hard-linked into place, so the key file appears complete or not at all and an existing
    one is never replaced.
    """
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return True


def _fsync_dir(directory: pathlib.Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _wrap_aad(key_arn: str, version: int, material_id: bytes) -> bytes:
    if not 0 <= version < 2**32:
        raise ValueError("material version must fit in 32 bits")
    return _WRAP_LABEL + length_prefixed(key_arn) + version.to_bytes(4, "big") + material_id


def wrap_material(root: RootKey, material: Material) -> bytes:
    """Return ``material`` wrapped under ``root``, bound to its key ARN, version and id."""
    nonce = os.urandom(_WRAP_NONCE_BYTES)
    aad = _wrap_aad(material.key_arn, material.version, material.material_id)
    return _WRAP_VERSION + nonce + root._aead.encrypt(nonce, material._secret, aad)


def unwrap_material(
    root: RootKey, key_arn: str, version: int, material_id: bytes, wrapped: bytes
) -> Material:
    """Return the material that ``wrap_material`` wrapped for this key ARN, version and id.

    Raises:
        KMSInternalException: the wrapped bytes are corrupt, belong to another key, version or
            material id, or were wrapped under another root key (one generic message).
    """
    if (
        len(wrapped) != WRAPPED_BYTES
        or wrapped[:1] != _WRAP_VERSION
        or len(material_id) != MATERIAL_ID_BYTES
    ):
        raise KMSInternalException()
    aad = _wrap_aad(key_arn, version, material_id)
    nonce = wrapped[1 : 1 + _WRAP_NONCE_BYTES]
    try:
        secret = root._aead.decrypt(nonce, wrapped[1 + _WRAP_NONCE_BYTES :], aad)
    except InvalidTag:
        raise KMSInternalException() from None
    return Material(material_id, key_arn, version, secret)
