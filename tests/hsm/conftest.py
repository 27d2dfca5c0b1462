"""Fixtures for the HSM tests: both anyio backends, a random root key, test material."""

from __future__ import annotations

import pytest

from kms_actors.hsm import Material, RootKey
from kms_actors.hsm._material import generate_material
from tests.hsm.hsm_support import ARN, random_root


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def root() -> RootKey:
    return random_root()


@pytest.fixture
def material() -> Material:
    return generate_material(ARN, 1)
