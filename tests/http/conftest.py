"""Fixtures for the end-to-end HTTP tests: the real server as a subprocess, real AWS clients.

One server (``kms-actors serve`` on a free loopback port) serves the whole session. Its config
is ``config/kms.toml`` plus two identities: a second account and temporary credentials with a
session token. Tests that need an empty key namespace use a Region nobody else uses (the
Region of the SigV4 scope picks the namespace), so they can share the server.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kms_actors.auth import sign_headers

ROOT = pathlib.Path(__file__).resolve().parents[2]
REGION = "us-east-1"
JSON_11 = "application/x-amz-json-1.1"

# The development identity of config/kms.toml.
ACCESS_KEY_ID = "AKIAEXAMPLEDEV000001"
SECRET_ACCESS_KEY = "kms-actors-development-secret-key-0001"
ACCOUNT_ID = "111122223333"
USER_ARN = "arn:aws:iam::111122223333:user/dev"

# A second account (added by the test config).
OTHER_ACCESS_KEY_ID = "AKIAEXAMPLEOTHER0001"
OTHER_SECRET_ACCESS_KEY = "kms-actors-other-account-secret-0001"
OTHER_ACCOUNT_ID = "444455556666"
OTHER_USER_ARN = "arn:aws:iam::444455556666:user/other"
# An administrator identity policy: with default key policies, full use of the own account.
ADMIN_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
)

# Temporary credentials of the first account: valid only with their session token.
TEMP_ACCESS_KEY_ID = "ASIAEXAMPLETEMP00001"
TEMP_SECRET_ACCESS_KEY = "kms-actors-temporary-secret-0001"
TEMP_SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE-session-token-0001"
TEMP_ARN = "arn:aws:sts::111122223333:assumed-role/app/session-1"

_EXTRA_IDENTITIES = f"""

[[identities]]
access_key_id = "{OTHER_ACCESS_KEY_ID}"
secret_access_key = "{OTHER_SECRET_ACCESS_KEY}"
account_id = "{OTHER_ACCOUNT_ID}"
arn = "{OTHER_USER_ARN}"
policies = [{ADMIN_POLICY!r}]

[[identities]]
access_key_id = "{TEMP_ACCESS_KEY_ID}"
secret_access_key = "{TEMP_SECRET_ACCESS_KEY}"
account_id = "{ACCOUNT_ID}"
arn = "{TEMP_ARN}"
session_token = "{TEMP_SESSION_TOKEN}"
policies = [{ADMIN_POLICY!r}]
"""

_LISTENING = re.compile(rb"listening on http://127\.0\.0\.1:(\d+)")


def clean_env() -> dict[str, str]:
    """Return this process's environment without AWS_* and KMS_ACTORS_* settings."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "KMS_ACTORS_"))
    }


def write_config(path: pathlib.Path) -> pathlib.Path:
    """Write the test configuration (the shipped one plus two identities) to ``path``."""
    path.write_text((ROOT / "config" / "kms.toml").read_text() + _EXTRA_IDENTITIES)
    return path


@dataclass
class ServerProcess:
    """A running ``kms-actors serve`` subprocess."""

    process: subprocess.Popen[bytes]
    endpoint: str
    port: int
    data_dir: pathlib.Path
    log_path: pathlib.Path

    def log(self) -> str:
        """Return what the server has written to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        """Send SIGTERM and return the exit status (killing the process after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise


def start_server(
    data_dir: pathlib.Path, config: pathlib.Path, *, port: int = 0, timeout: float = 30.0
) -> ServerProcess:
    """Start ``python -m kms_actors serve`` and return once ``GET /health`` answers 200."""
    data_dir.mkdir(parents=True, exist_ok=True)
    runs = itertools.count(1)
    while (log_path := data_dir.parent / f"{data_dir.name}-server-{next(runs)}.log").exists():
        pass
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "kms_actors", "serve", "--host", "127.0.0.1"),
                *("--port", str(port), "--data-dir", str(data_dir), "--config", str(config)),
            ],
            cwd=ROOT,
            env=clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    bound = port
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(OSError):
                process.kill()
            process.wait(timeout=10)
            pytest.fail(f"server did not start: {log_path.read_text(errors='replace')[-3000:]}")
        if not bound:
            found = _LISTENING.search(log_path.read_bytes())
            bound = int(found[1]) if found else 0
        if bound and _healthy(f"http://127.0.0.1:{bound}"):
            return ServerProcess(process, f"http://127.0.0.1:{bound}", bound, data_dir, log_path)
        time.sleep(0.05)


def _healthy(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/health", timeout=2) as reply:
            status: object = json.loads(reply.read()).get("status")
            return reply.status == 200 and status == "ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def test_config(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The server configuration: config/kms.toml plus a second account and a temporary key."""
    return write_config(tmp_path_factory.mktemp("config") / "kms-test.toml")


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, test_config: pathlib.Path
) -> Iterator[ServerProcess]:
    """One real server for the session, on a free loopback port."""
    running = start_server(tmp_path_factory.mktemp("server") / "data", test_config)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def endpoint(server: ServerProcess) -> str:
    """The shared server's endpoint URL."""
    return server.endpoint


@pytest.fixture(scope="package", autouse=True)
def _aws_environment() -> Iterator[None]:
    """Keep the shell's AWS settings (profiles, endpoints, credentials) out of every client."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("AWS_", "KMS_ACTORS_")):
                patch.delenv(name)
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest.fixture(scope="package")
def boto_session(_aws_environment: None) -> Any:
    """One boto3 session (its loaded service models are shared by every client)."""
    return boto3.session.Session()


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio (aiobotocore and aiohttp need it)."""
    return "asyncio"


NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})

ClientFactory = Callable[..., Any]


@pytest.fixture
def make_client(boto_session: Any, endpoint: str) -> ClientFactory:
    """Return ``make_client(service="kms", region=..., access_key_id=..., ...)``: a boto3 client
    of the shared server, signing as the development identity unless told otherwise.
    """

    def make(
        service: str = "kms",
        *,
        region: str = REGION,
        access_key_id: str = ACCESS_KEY_ID,
        secret_access_key: str = SECRET_ACCESS_KEY,
        session_token: str | None = None,
        endpoint_url: str | None = None,
    ) -> Any:
        return boto_session.client(
            service,
            endpoint_url=endpoint_url or endpoint,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            config=NO_RETRIES,
        )

    return make


@pytest.fixture
def kms(make_client: ClientFactory) -> Any:
    """A boto3 KMS client of the shared server, as the development identity in us-east-1."""
    return make_client()


def error_of(call: Callable[..., Any], /, **params: Any) -> dict[str, Any]:
    """Return the ``ClientError.response`` of a call that must fail."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    response: dict[str, Any] = caught.value.response
    return response


def new_key(kms: Any, **params: Any) -> dict[str, Any]:
    """Create a key through boto3 and return its KeyMetadata."""
    metadata: dict[str, Any] = kms.create_key(**params)["KeyMetadata"]
    return metadata


@dataclass
class RawReply:
    """An HTTP answer: status, headers (lowercase names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """Return the body decoded as a JSON object."""
        document = json.loads(self.body)
        assert isinstance(document, dict), self.body
        return document


def raw_request(
    endpoint: str,
    body: bytes = b"{}",
    *,
    target: str | None = "TrentService.ListKeys",
    method: str = "POST",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    sign: bool = True,
    access_key_id: str = ACCESS_KEY_ID,
    secret_access_key: str = SECRET_ACCESS_KEY,
    session_token: str | None = None,
    region: str = REGION,
    service: str = "kms",
    now: float | None = None,
) -> RawReply:
    """Send one request with urllib, signed with ``sign_headers`` unless ``sign=False``."""
    url = f"{endpoint}{path}"
    send: dict[str, str] = {"Content-Type": JSON_11}
    if target is not None:
        send["X-Amz-Target"] = target
    send.update(headers or {})
    if sign:
        send.update(
            sign_headers(
                method=method,
                url=url,
                headers=send,
                body=body,
                access_key_id=access_key_id,
                secret_access_key=secret_access_key,
                region=region,
                service=service,
                session_token=session_token,
                now=now,
            )
        )
    return send_raw(url, body if method not in ("GET", "HEAD") else None, send, method)


def send_raw(url: str, body: bytes | None, headers: Mapping[str, str], method: str) -> RawReply:
    """Send a prepared request with urllib and return the answer, error statuses included."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return RawReply(reply.status, _lower(reply.headers.items()), reply.read())
    except urllib.error.HTTPError as error:
        with error:
            return RawReply(error.code, _lower(error.headers.items()), error.read())


def _lower(items: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in items}


def assert_aws_error(reply: RawReply, code: str, status: int = 400) -> dict[str, Any]:
    """Check that ``reply`` is an AWS JSON error with ``code``; return the decoded body."""
    assert reply.status == status, (reply.status, reply.body)
    assert b"Traceback" not in reply.body
    assert reply.headers.get("x-amzn-requestid"), reply.headers
    document = reply.json()
    assert document["__type"] == code, document
    return document
