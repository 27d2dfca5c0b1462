"""Signing audit-log checkpoints with a key derived from the root key.

The audit log is chained by hash; a checkpoint states "record ``seq`` has hash ``h``" and is
authenticated with HMAC-SHA256 under a checkpoint key that only this package holds, so whoever
can rewrite the audit database (but not read the root key) cannot forge a consistent chain.

Derivation. ``RootKey`` keeps only its AES-GCM object, not the key bytes, so the root key is
used as a PRF through it: for a nonce ``N`` reserved for this purpose, AES-GCM's keystream is
``AES_K(N || 2) || AES_K(N || 3)``, a pseudorandom function of the root key ``K``::

    N   = SHA-256(b"kms-actors/v1/root-prf" || 0x00 || LABEL)[:12]
    PRK = first 32 bytes of AES-256-GCM_K(nonce=N, plaintext=32 zero bytes)
    KEY = HMAC-SHA256(PRK, [1]_32 || LABEL || 0x00 || [256]_32)   (NIST SP 800-108, counter
          mode, one iteration, empty context), LABEL = b"kms-actors/v1/audit-checkpoint"

Material wrapping draws its GCM nonces at random, so it meets ``N`` with probability 2^-96 per
wrap. Neither ``PRK`` nor ``KEY`` leaves this module: callers hold a ``CheckpointSigner``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NoReturn

from kms_actors.hsm._rootkey import RootKey

CHECKPOINT_LABEL = b"kms-actors/v1/audit-checkpoint"
SIGNATURE_BYTES = 32
_PRF_DOMAIN = b"kms-actors/v1/root-prf\x00"


def _root_prf(root: RootKey, label: bytes) -> bytes:
    nonce = hashlib.sha256(_PRF_DOMAIN + label).digest()[:12]
    return root._aead.encrypt(nonce, bytes(32), None)[:32]


def _sp800_108(key: bytes, label: bytes) -> bytes:
    message = (1).to_bytes(4, "big") + label + b"\x00" + (256).to_bytes(4, "big")
    return hmac.digest(key, message, "sha256")


class CheckpointSigner:
    """HMAC-SHA256 under the audit checkpoint key; the key itself is never exposed."""

    __slots__ = ("_mac",)

    def __init__(self, root: RootKey) -> None:
        key = _sp800_108(_root_prf(root, CHECKPOINT_LABEL), CHECKPOINT_LABEL)
        self._mac = hmac.new(key, digestmod="sha256")

    def sign(self, data: bytes) -> bytes:
        """Return the 32-byte HMAC-SHA256 of ``data``."""
        mac = self._mac.copy()
        mac.update(data)
        return mac.digest()

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Say whether ``signature`` is the HMAC of ``data`` (constant-time comparison)."""
        return hmac.compare_digest(self.sign(data), signature)

    def __repr__(self) -> str:
        return "CheckpointSigner(<redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("CheckpointSigner cannot be pickled or copied")


def checkpoint_signer(root: RootKey) -> CheckpointSigner:
    """Return the signer for audit checkpoints, keyed from ``root``."""
    return CheckpointSigner(root)
