"""Shared values and helpers of the audit end-to-end tests."""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import io
import json
import pathlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
from botocore.config import Config

import kms_actors
from kms_actors import cli_audit
from tests.http.conftest import NO_RETRIES, ROOT, clean_env

REGION = "us-east-1"
ACCOUNT_ID = "111122223333"

# The development identity of config/kms.toml.
ACCESS_KEY_ID = "AKIAEXAMPLEDEV000001"
SECRET_ACCESS_KEY = "kms-actors-development-secret-key-0001"
USER_ARN = "arn:aws:iam::111122223333:user/dev"

# An identity of the same account without any identity policy (added by the test config):
# the default key policy delegates to IAM, so every key operation is denied to it.
NOBODY_ACCESS_KEY_ID = "AKIAEXAMPLENOBODY001"
NOBODY_SECRET_ACCESS_KEY = "kms-actors-nobody-secret-key-0001"
NOBODY_ARN = "arn:aws:iam::111122223333:user/nobody"

_NOBODY = f"""

[[identities]]
access_key_id = "{NOBODY_ACCESS_KEY_ID}"
secret_access_key = "{NOBODY_SECRET_ACCESS_KEY}"
account_id = "{ACCOUNT_ID}"
arn = "{NOBODY_ARN}"
"""

ClientFactory = Callable[..., Any]


def write_config(path: pathlib.Path) -> pathlib.Path:
    """Write the test configuration (the shipped one plus the policy-less identity)."""
    path.write_text((ROOT / "config" / "kms.toml").read_text() + _NOBODY)
    return path


def client_factory(session: Any, endpoint: str) -> ClientFactory:
    """Return ``make(service="kms", region=..., access_key_id=..., ...)`` for ``endpoint``."""

    def make(
        service: str = "kms",
        *,
        region: str = REGION,
        access_key_id: str = ACCESS_KEY_ID,
        secret_access_key: str = SECRET_ACCESS_KEY,
        validate: bool = True,
    ) -> Any:
        return session.client(
            service,
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=NO_RETRIES.merge(Config(parameter_validation=validate)),
        )

    return make


# --- reading the audit store directly ------------------------------------------------------


def audit_path(data_dir: pathlib.Path) -> pathlib.Path:
    """Return the audit database of a data directory."""
    return data_dir / "audit.sqlite3"


@contextlib.contextmanager
def audit_db(data_dir: pathlib.Path) -> Iterator[sqlite3.Connection]:
    """Open the audit database with sqlite3 (reads see what is committed; writes tamper)."""
    conn = sqlite3.connect(audit_path(data_dir), timeout=10)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def events(data_dir: pathlib.Path) -> list[dict[str, Any]]:
    """Return every stored event (CloudTrail JSON, decoded), in chain order."""
    with audit_db(data_dir) as conn:
        rows = conn.execute("SELECT event_json FROM audit_records ORDER BY seq").fetchall()
    return [json.loads(bytes(row[0])) for row in rows]


def event_of(data_dir: pathlib.Path, request_id: str) -> dict[str, Any]:
    """Return the one event whose requestID is ``request_id`` (failing if not exactly one)."""
    found = [e for e in events(data_dir) if e.get("requestID") == request_id]
    assert len(found) == 1, f"{len(found)} events for request {request_id}"
    return found[0]


def head_seq(data_dir: pathlib.Path) -> int:
    """Return the seq of the newest stored event (0 when there is none)."""
    with audit_db(data_dir) as conn:
        row = conn.execute("SELECT max(seq) FROM audit_records").fetchone()
    return int(row[0] or 0)


def audit_files(data_dir: pathlib.Path) -> list[pathlib.Path]:
    """Return the audit database's files that exist now (main, -wal, -shm, journals)."""
    return sorted(p for p in data_dir.iterdir() if p.name.startswith("audit.sqlite3"))


def secret_forms(value: bytes) -> list[bytes]:
    """Return the ways a secret could be written down: raw, base64 (both alphabets), hex."""
    forms = [value, base64.b64encode(value), base64.urlsafe_b64encode(value)]
    forms += [value.hex().encode(), value.hex().upper().encode()]
    # Without padding too: a blob inside a longer base64 string need not end on "=".
    forms += [form.rstrip(b"=") for form in forms[1:3]]
    return list(dict.fromkeys(forms))


def assert_no_secrets(data_dir: pathlib.Path, secrets: dict[str, bytes]) -> None:
    """Fail if any form of any secret is in the audit files (database, WAL) of ``data_dir``."""
    files = audit_files(data_dir)
    assert files, f"no audit files in {data_dir}"
    contents = {path.name: path.read_bytes() for path in files}
    leaks = [
        (name, label)
        for label, secret in secrets.items()
        for form in secret_forms(secret)
        for name, content in contents.items()
        if form in content
    ]
    assert not leaks, f"secrets found in the audit files: {leaks}"


# --- the CLI -------------------------------------------------------------------------------


@dataclass
class CliResult:
    """What ``kms-actors audit ...`` did: exit status, stdout, stderr."""

    code: int
    out: str
    err: str


def audit_cli(*argv: str) -> CliResult:
    """Run ``kms-actors audit ARGV`` in this process (the parser as cli.py builds it)."""
    parser = argparse.ArgumentParser(prog="kms-actors")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_audit.add_parser(sub)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_audit.run(parser.parse_args(["audit", *argv]))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    text = [stream.buffer.getvalue().decode() for stream in (out, err)]
    return CliResult(code, text[0], text[1])


def audit_cli_subprocess(*argv: str) -> CliResult:
    """Run ``python -m kms_actors audit ARGV`` (the installed command line)."""
    done = subprocess.run(
        [sys.executable, "-m", "kms_actors", "audit", *argv],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


# --- the embedded client, called from synchronous code -------------------------------------


class SyncKms:
    """The embedded client's methods, callable from synchronous code (like a boto3 client)."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, kms: Any) -> None:
        self.portal = portal
        self.kms = kms

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.kms, name)

        def call(**params: Any) -> Any:
            return self.portal.call(functools.partial(method, **params))

        return call


@contextlib.contextmanager
def embedded(data_dir: pathlib.Path, **options: Any) -> Iterator[SyncKms]:
    """Run the service in-process (``kms_actors.open_kms``) for synchronous test code."""
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(kms_actors.open_kms(data_dir, **options)) as kms,
    ):
        yield SyncKms(portal, kms)
