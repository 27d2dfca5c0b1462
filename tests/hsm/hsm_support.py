"""Shared constants and helpers for the HSM tests."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import anyio.lowlevel

from kms_actors.hsm import RootKey

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_ARN = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def random_root() -> RootKey:
    """Return a fresh random root key."""
    return RootKey.from_base64(base64.b64encode(os.urandom(32)).decode())


async def until(condition: Callable[[], bool], *, checkpoints: int = 10_000) -> None:
    """Yield to the scheduler until ``condition()`` holds (no wall-clock sleeping)."""
    for _ in range(checkpoints):
        if condition():
            return
        await anyio.lowlevel.checkpoint()
    raise AssertionError("condition never became true")
