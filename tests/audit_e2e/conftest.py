"""Fixtures for the audit end-to-end tests: a real server, boto3 clients, clean environment.

One server (``python -m kms_actors serve`` on a free loopback port) serves the tests that only
read their own events (found by request id); tests that count events or kill the server start
their own, or run the service in-process with ``kms_actors.open_kms``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.audit_e2e.audit_e2e_support import ClientFactory, client_factory, write_config
from tests.http.conftest import ServerProcess, start_server


@pytest.fixture(scope="package", autouse=True)
def _clean_environment() -> Iterator[None]:
    """Keep the shell's AWS and KMS_ACTORS settings (a root key, endpoints) out of the tests."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("AWS_", "KMS_ACTORS_")):
                patch.delenv(name)
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio."""
    return "asyncio"


@pytest.fixture(scope="package")
def audit_config(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The server configuration: config/kms.toml plus an identity without any policy."""
    return write_config(tmp_path_factory.mktemp("config") / "kms-audit.toml")


@pytest.fixture(scope="package")
def server(
    tmp_path_factory: pytest.TempPathFactory, audit_config: pathlib.Path
) -> Iterator[ServerProcess]:
    """One real server for the package's read-only checks."""
    running = start_server(tmp_path_factory.mktemp("server") / "data", audit_config)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
def boto_session(_clean_environment: None) -> Any:
    """One boto3 session (its loaded service models are shared by every client)."""
    return boto3.session.Session()


@pytest.fixture(scope="package")
def make_client(boto_session: Any, server: ServerProcess) -> ClientFactory:
    """Return ``make_client(service="kms", ...)``: a boto3 client of the shared server."""
    return client_factory(boto_session, server.endpoint)
