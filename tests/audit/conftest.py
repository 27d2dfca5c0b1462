"""Fixtures for the audit tests: both anyio backends, a fake clock, a random signer."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from kms_actors.audit import AuditStore, open_audit_store
from kms_actors.domain.clock import FakeClock
from kms_actors.hsm import CheckpointSigner

from .audit_support import START, random_signer


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every async test on asyncio (aiosqlite) and on Trio (the thread adapter)."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock(START)


@pytest.fixture
def signer() -> CheckpointSigner:
    """The checkpoint signer of a fresh random root key."""
    return random_signer()


@pytest.fixture
def data_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """The data directory (created by the store)."""
    return tmp_path / "data"


@pytest.fixture
async def store(data_dir: pathlib.Path, clock: FakeClock) -> AsyncIterator[AuditStore]:
    """A fresh audit store."""
    async with open_audit_store(data_dir, clock=clock) as opened:
        yield opened
