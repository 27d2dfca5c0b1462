"""Fixtures for the load-test harness tests: the real server as a subprocess, and a CLI runner."""

from __future__ import annotations

import argparse
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from kms_actors.loadtest import add_parser, run

ACCESS_KEY_ID = "AKIAEXAMPLEDEV000001"  # the development identity of config/kms.toml
SECRET_ACCESS_KEY = "kms-actors-development-secret-key-0001"
REGION = "us-east-1"
ROOT = pathlib.Path(__file__).resolve().parents[2]

Runner = Callable[..., tuple[int, str, str]]


def free_port() -> int:
    """Return a TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env() -> dict[str, str]:
    """Return the environment with the development credentials and no KMS_ACTORS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KMS_ACTORS_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give in-process runs the development credentials and none of the shell's settings."""
    for name in list(os.environ):
        if name.startswith(("KMS_ACTORS_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in clean_env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run ``kms-actors serve`` on a free port; yield its endpoint URL."""
    data = tmp_path_factory.mktemp("server-data")
    port = free_port()
    log = (data / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "kms_actors", "serve", "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/health", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("server did not start: " + (data / "server.log").read_text()[-2000:])
            time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture
def loadtest(capsys: pytest.CaptureFixture[str]) -> Runner:
    """Return a function running ``kms-actors loadtest ARGS`` in-process: (status, out, err)."""

    def run_loadtest(*argv: str) -> tuple[int, str, str]:
        parser = argparse.ArgumentParser(prog="kms-actors")
        add_parser(parser.add_subparsers(dest="command", required=True))
        capsys.readouterr()
        status = run(parser.parse_args(["loadtest", *argv]))
        out, err = capsys.readouterr()
        return status, out, err

    return run_loadtest


def run_subprocess(
    *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kms_actors.loadtest ARGS`` as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "kms_actors.loadtest", *argv],
        cwd=ROOT,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
