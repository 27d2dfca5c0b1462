"""The HSM: the one package that touches key material or imports ``cryptography``.

How it is built:

- ``_rootkey``: ``RootKey`` (key file or base64) and wrapping material under it at rest.
- ``_material``: the opaque ``Material`` handle and the SP 800-108 per-message key derivation.
- ``_blob``: the versioned symmetric ciphertext blob (format documented there).
- ``_pool``: ``open_hsm_pool`` / ``HsmPool``, which runs symmetric recipes inline or batched
  onto worker threads, and material generation/unwrapping on worker threads.
- ``_checkpoint``: ``checkpoint_signer(root)``, HMAC signing of audit-log checkpoints under a
  key derived from the root key.

Raw key bytes never leave this package: callers hold ``Material`` handles and get blobs.
Every ciphertext integrity failure raises ``InvalidCiphertextException(INVALID_CIPHERTEXT)``;
a caller that rejects a blob itself (say, an unknown material id) must use the same message,
so that nothing tells why a blob was refused.
"""

from kms_actors.hsm._blob import INVALID_CIPHERTEXT, blob_material_id
from kms_actors.hsm._checkpoint import CheckpointSigner, checkpoint_signer
from kms_actors.hsm._material import Material
from kms_actors.hsm._pool import HsmPool, open_hsm_pool
from kms_actors.hsm._rootkey import RootKey

__all__ = [
    "INVALID_CIPHERTEXT",
    "CheckpointSigner",
    "HsmPool",
    "Material",
    "RootKey",
    "blob_material_id",
    "checkpoint_signer",
    "open_hsm_pool",
]
