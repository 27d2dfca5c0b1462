"""Fixtures for the engine tests: the embedded service on asyncio, with a fake clock."""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import kms_actors
from kms_actors import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    """Run the engine tests on asyncio (one test opts into Trio by parametrizing this)."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep KMS_ACTORS_* variables of the shell (a root key, a quota) out of the tests."""
    for name in list(os.environ):
        if name.startswith("KMS_ACTORS_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """The service's data directory (created by the service)."""
    return tmp_path / "data"


@pytest.fixture
async def kms(data_dir: pathlib.Path, clock: FakeClock) -> AsyncIterator[Any]:
    """A running service with default settings and its embedded client."""
    async with kms_actors.open_kms(data_dir, clock=clock) as client:
        yield client
