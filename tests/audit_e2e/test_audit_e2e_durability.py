"""Durable before the reply: an answered request's event survives ``kill -9`` of the server.

And with ``audit.durable = false`` (asynchronous logging) every event is still written by
the time the service has closed.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import botocore.exceptions
import pytest

import kms_actors
from tests.audit_e2e.audit_e2e_support import audit_cli, client_factory, events
from tests.http.conftest import start_server


def test_answered_requests_survive_kill_9_of_the_server(
    tmp_path: pathlib.Path, audit_config: pathlib.Path, boto_session: Any
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, audit_config)
    try:
        kms = client_factory(boto_session, server.endpoint)()
        key = kms.create_key()["KeyMetadata"]["KeyId"]

        def encrypt(number: int) -> str:
            reply = kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"n": str(number)})
            request_id: str = reply["ResponseMetadata"]["RequestId"]
            return request_id

        with ThreadPoolExecutor(8) as pool:
            answered = list(pool.map(encrypt, range(24)))
        last = encrypt(24)
    finally:
        server.process.kill()  # SIGKILL: no shutdown, no final flush or checkpoint
        server.process.wait(timeout=10)
    assert server.process.returncode == -9

    restarted = start_server(data_dir, audit_config)
    try:
        cloudtrail = client_factory(boto_session, restarted.endpoint)("cloudtrail")
        found = cloudtrail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}],
            MaxResults=1,
        )["Events"]
        assert json.loads(found[0]["CloudTrailEvent"])["requestID"] == last
        listed = audit_cli(
            *("list", "--config", str(audit_config), "--data-dir", str(data_dir)),
            *("--event", "Encrypt", "--limit", "0", "--format", "jsonl"),
        )
        assert listed.code == 0, listed.err
        request_ids = [json.loads(line)["requestID"] for line in listed.out.splitlines()]
        assert sorted(request_ids) == sorted([*answered, last])
        verified = audit_cli("verify", "--config", str(audit_config), "--data-dir", str(data_dir))
        assert verified.code == 0, verified.out + verified.err
        assert verified.out.startswith("ok: 26 records verified (chain head ")
    finally:
        restarted.stop()


@pytest.mark.anyio
async def test_asynchronous_logging_still_records_every_event(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    request_ids = []
    async with kms_actors.open_kms(data_dir, overrides={"audit.durable": False}) as kms:
        assert kms.service.audit is not None and kms.service.audit.durable is False
        key = (await kms.create_key())["KeyMetadata"]["KeyId"]
        for number in range(30):
            reply = await kms.encrypt(
                KeyId=key, Plaintext=b"x", EncryptionContext={"n": f"{number}"}
            )
            request_ids.append(reply["ResponseMetadata"]["RequestId"])
        with pytest.raises(kms_actors.KmsError):
            await kms.describe_key(KeyId="alias/missing")
    stored = events(data_dir)
    assert [e["eventName"] for e in stored] == ["CreateKey", *["Encrypt"] * 30, "DescribeKey"]
    assert [e["requestID"] for e in stored[1:31]] == request_ids
    assert stored[-1]["errorCode"] == "NotFoundException"
    verified = await anyio.to_thread.run_sync(audit_cli, "verify", "--data-dir", str(data_dir))
    assert verified.code == 0, verified.out + verified.err


def _writer_of(server_pid: int) -> int | None:
    """Return the pid of the server's audit writer process (a child running the writer)."""
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = next(line for line in status.splitlines() if line.startswith("PPid:"))
        if int(parent.split()[1]) == server_pid and b"_writer_process" in command:
            return int(entry.name)
    return None


def test_a_killed_audit_writer_fails_requests_closed_until_it_is_back(
    tmp_path: pathlib.Path, audit_config: pathlib.Path, boto_session: Any
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, audit_config)
    try:
        kms = client_factory(boto_session, server.endpoint)()  # no retries: refusals show
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        writer = _writer_of(server.process.pid)
        assert writer is not None
        os.kill(writer, signal.SIGKILL)
        answered: list[str] = []
        refused = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                reply = kms.encrypt(KeyId=key, Plaintext=b"x")
            except botocore.exceptions.ClientError as error:
                assert error.response["Error"]["Code"] == "KMSInternalException"
                assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
                refused += 1
                time.sleep(0.05)
                continue
            answered.append(reply["ResponseMetadata"]["RequestId"])
            if len(answered) == 5:
                break
        assert len(answered) == 5, server.log()[-3000:]
        assert refused >= 1  # it was refused while the writer was down, not run unrecorded
        restarted_writer = _writer_of(server.process.pid)
        assert restarted_writer not in (None, writer)
        assert "audit writer process started again" in server.log()
    finally:
        assert server.stop() == 0
    stored = [e for e in events(data_dir) if e["eventName"] == "Encrypt"]
    ids = [e["requestID"] for e in stored]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(answered) <= set(ids)  # every answered request is recorded
    # A request refused because its event was not confirmed (in flight when the writer died)
    # is recorded all the same, once the event is resent; those refused at once, while the
    # writer was down, were never run.
    assert len(ids) <= len(answered) + refused
    verified = audit_cli("verify", "--config", str(audit_config), "--data-dir", str(data_dir))
    assert verified.code == 0, verified.out + verified.err
