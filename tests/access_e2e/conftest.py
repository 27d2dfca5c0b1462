"""Fixtures for the access decision-table tests: the real HTTP server of ``tests/http``."""

from __future__ import annotations

from tests.http.conftest import (
    _aws_environment,
    anyio_backend,
    boto_session,
    endpoint,
    make_client,
    server,
    test_config,
)

__all__ = [
    "_aws_environment",
    "anyio_backend",
    "boto_session",
    "endpoint",
    "make_client",
    "server",
    "test_config",
]
