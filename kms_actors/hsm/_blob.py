"""Symmetric ciphertext blobs, format v1.

Layout (all lengths in bytes)::

    offset  length  field
    0       1       version, 0x01
    1       16      material_id   names the key material version (public, not the key ARN)
    17      16      salt          random per message; the SP 800-108 Context
    33      12      iv            random per message; the AES-GCM nonce
    45      n       ciphertext    AES-256-GCM of the plaintext (n == len(plaintext))
    45+n    16      tag           the GCM authentication tag

The first 45 bytes are the header. The GCM key is derived per message from the material with
NIST SP 800-108 in counter mode, HMAC-SHA256, one iteration::

    K = HMAC-SHA256(material, [1]_32 || b"kms-actors/v1/data" || 0x00 || salt || [256]_32)

so there is no per-key limit on the number of GCM nonces. The GCM associated data is::

    header (45) || len(key ARN) (4, big-endian) || key ARN (UTF-8) || canonical_context(context)

Binding the header makes every header byte tamper-evident; binding the key ARN means a blob
cannot be replayed under another key, account or region even if a material id were reused;
the canonical context (``kms_actors.domain.context``) is length-prefixed and sorted, so
``{"ab": "c"}`` and ``{"a": "bc"}`` differ.

Every failure — malformed, truncated, unknown version, other material, tampered, wrong context —
raises ``InvalidCiphertextException`` with the one fixed message ``INVALID_CIPHERTEXT``, so a
caller learns nothing about why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_actors.domain.context import canonical_context
from kms_actors.errors import InvalidCiphertextException
from kms_actors.hsm._material import MATERIAL_ID_BYTES, Material, derive_message_key

BLOB_VERSION = 0x01
SALT_BYTES = 16
IV_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = 1 + MATERIAL_ID_BYTES + SALT_BYTES + IV_BYTES  # 45
MIN_BLOB_BYTES = HEADER_BYTES + TAG_BYTES  # 61: an empty plaintext

INVALID_CIPHERTEXT = "The ciphertext is invalid."

_VERSION_BYTE = bytes([BLOB_VERSION])
_ID_END = 1 + MATERIAL_ID_BYTES
_SALT_END = _ID_END + SALT_BYTES


def _invalid() -> InvalidCiphertextException:
    return InvalidCiphertextException(INVALID_CIPHERTEXT)


def blob_material_id(blob: bytes) -> bytes:
    """Return the material id named in a ciphertext blob's header.

    This only parses the header; it proves nothing about the blob's integrity.

    Raises:
        InvalidCiphertextException: the blob is too short or of an unknown version.
    """
    if len(blob) < MIN_BLOB_BYTES or blob[0] != BLOB_VERSION:
        raise _invalid()
    return bytes(blob[1:_ID_END])


def seal(material: Material, plaintext: bytes, context: Mapping[str, str] | None) -> bytes:
    """Encrypt ``plaintext`` under ``material`` and ``context``; return a v1 blob."""
    salt_iv = os.urandom(SALT_BYTES + IV_BYTES)
    header = _VERSION_BYTE + material._material_id + salt_iv
    key = derive_message_key(material, salt_iv[:SALT_BYTES])
    aad = header + material._arn_aad + canonical_context(context)
    return header + AESGCM(key).encrypt(salt_iv[SALT_BYTES:], plaintext, aad)


def open_blob(material: Material, blob: bytes, context: Mapping[str, str] | None) -> bytes:
    """Decrypt a v1 blob made by ``seal`` under the same material and context.

    Raises:
        InvalidCiphertextException: for every integrity failure, with one fixed message.
    """
    if (
        len(blob) < MIN_BLOB_BYTES
        or blob[0] != BLOB_VERSION
        or blob[1:_ID_END] != material._material_id
    ):
        raise _invalid()
    blob = bytes(blob)
    header = blob[:HEADER_BYTES]
    key = derive_message_key(material, blob[_ID_END:_SALT_END])
    aad = header + material._arn_aad + canonical_context(context)
    try:
        return AESGCM(key).decrypt(blob[_SALT_END:HEADER_BYTES], blob[HEADER_BYTES:], aad)
    except InvalidTag:
        raise _invalid() from None
