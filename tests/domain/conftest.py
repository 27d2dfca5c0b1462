"""Fixtures for the domain tests: both anyio backends and a fake clock."""

from __future__ import annotations

import pytest

from kms_actors.domain.clock import FakeClock

START = 1_700_000_000.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)
