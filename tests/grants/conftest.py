"""Fixtures for the grant tests: both anyio backends where nothing needs asyncio only."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each async test once per backend (the store picks its SQLite adapter by backend)."""
    backend: str = request.param
    return backend
