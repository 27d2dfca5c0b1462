"""The HSM's checkpoint signer: keyed from the root key, stable across restarts."""

from __future__ import annotations

import base64
import copy
import os
import pickle

import pytest

from kms_actors.hsm import RootKey, checkpoint_signer


def root(key: bytes) -> RootKey:
    return RootKey.from_base64(base64.b64encode(key).decode())


def test_sign_and_verify() -> None:
    signer = checkpoint_signer(root(os.urandom(32)))
    signature = signer.sign(b"record 7 has hash h")
    assert len(signature) == 32
    assert signer.verify(b"record 7 has hash h", signature)
    assert not signer.verify(b"record 8 has hash h", signature)
    assert not signer.verify(b"record 7 has hash h", bytes(32))
    assert not signer.verify(b"record 7 has hash h", signature[:16])


def test_same_root_key_same_signatures_other_root_key_other_signatures() -> None:
    key = os.urandom(32)
    # A restart loads the same root key: its checkpoints must still verify.
    assert checkpoint_signer(root(key)).sign(b"x") == checkpoint_signer(root(key)).sign(b"x")
    assert checkpoint_signer(root(os.urandom(32))).sign(b"x") != checkpoint_signer(root(key)).sign(
        b"x"
    )


def test_signer_does_not_show_or_export_its_key() -> None:
    signer = checkpoint_signer(root(os.urandom(32)))
    assert repr(signer) == "CheckpointSigner(<redacted>)"
    with pytest.raises(TypeError):
        pickle.dumps(signer)
    with pytest.raises(TypeError):
        copy.copy(signer)
