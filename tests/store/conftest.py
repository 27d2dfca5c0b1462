"""Fixtures for the store tests: every test runs on asyncio (aiosqlite) and on Trio."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from kms_actors.store import Store, open_store


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each async test once per backend; the store picks its SQLite adapter by backend."""
    return str(request.param)


@pytest.fixture
async def store(tmp_path: pathlib.Path) -> AsyncIterator[Store]:
    """Open a fresh store in a temporary data directory."""
    async with open_store(tmp_path / "data") as opened:
        yield opened
