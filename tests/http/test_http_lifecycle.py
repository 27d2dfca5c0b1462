"""The server's life: clean shutdown with requests in flight, restart, and a fake clock."""

from __future__ import annotations

import functools
import json
import pathlib
import signal
import socket
import time
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

from kms_actors import FakeClock, load_settings
from kms_actors.auth import sign_headers
from kms_actors.service import open_service
from tests.http.conftest import (
    ACCESS_KEY_ID,
    JSON_11,
    REGION,
    SECRET_ACCESS_KEY,
    ClientFactory,
    ServerProcess,
    new_key,
    raw_request,
    start_server,
)

IN_FLIGHT = 48


def _signed_request(port: int, operation: str, params: dict[str, Any]) -> bytes:
    """Return the bytes of one signed keep-alive HTTP/1.1 request."""
    body = json.dumps(params).encode()
    headers = {"Content-Type": JSON_11, "X-Amz-Target": f"TrentService.{operation}"}
    headers.update(
        sign_headers(
            method="POST",
            url=f"http://127.0.0.1:{port}/",
            headers=headers,
            body=body,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
            region=REGION,
            service="kms",
        )
    )
    lines = [
        "POST / HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _read_response(sock: socket.socket) -> tuple[int, dict[str, Any]] | None:
    """Return (status, JSON body) of one response, or None if the server closed without one."""
    sock.settimeout(20)
    data = b""
    try:
        while True:
            head, separator, body = data.partition(b"\r\n\r\n")
            if separator:
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                if len(body) >= length:
                    return int(head.split(b" ", 2)[1]), json.loads(body[:length])
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
    except ConnectionError:
        return None


def _boto3(make_client: ClientFactory, server: ServerProcess) -> Any:
    return make_client(endpoint_url=server.endpoint)


def test_sigterm_lets_in_flight_requests_finish(
    tmp_path: pathlib.Path, test_config: pathlib.Path, make_client: ClientFactory
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, test_config)
    try:
        key_id = new_key(_boto3(make_client, server))["KeyId"]
        sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(IN_FLIGHT)]
        requests = [
            _signed_request(server.port, "CreateKey", {"Description": f"in flight {i}"})
            if i % 2
            else _signed_request(
                server.port, "Encrypt", {"KeyId": key_id, "Plaintext": "aW4gZmxpZ2h0"}
            )
            for i in range(IN_FLIGHT)
        ]
        time.sleep(0.2)  # every connection accepted and idle
        for sock, request in zip(sockets, requests, strict=True):
            sock.sendall(request)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        replies = [_read_response(sock) for sock in sockets]
        for sock in sockets:
            sock.close()
        status = server.process.wait(timeout=15)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    answered = [reply for reply in replies if reply is not None]

    # Every CreateKey answered 200 was committed before its answer: it is there after a restart.
    restarted = start_server(data_dir, test_config)
    try:
        listed = {
            entry["KeyId"] for entry in _boto3(make_client, restarted).list_keys(Limit=1000)["Keys"]
        }
        for code, body in answered:
            if code == 200 and "KeyMetadata" in body:
                assert body["KeyMetadata"]["KeyId"] in listed
    finally:
        restarted.stop()

    failed = [reply for reply in answered if reply[0] != 200]
    assert answered, "no request was in flight when SIGTERM arrived"
    assert not failed, f"{len(failed)} of {len(answered)} in-flight requests failed: {failed[:2]}"
    assert status == 0, server.log()[-3000:]
    assert elapsed < 5, f"shutdown took {elapsed:.1f} s"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly_and_restart_keeps_keys(
    tmp_path: pathlib.Path,
    test_config: pathlib.Path,
    make_client: ClientFactory,
    signum: signal.Signals,
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, test_config)
    try:
        kms = _boto3(make_client, server)
        key = new_key(kms, Description="survives restarts", Tags=[{"TagKey": "t", "TagValue": "v"}])
        blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"durable")["CiphertextBlob"]
        kms.create_alias(AliasName="alias/durable", TargetKeyId=key["KeyId"])
        disabled = new_key(kms)["KeyId"]
        kms.disable_key(KeyId=disabled)
        started = time.monotonic()
        server.process.send_signal(signum)
        assert server.process.wait(timeout=15) == 0, server.log()[-3000:]
        assert time.monotonic() - started < 5
        assert "Traceback" not in server.log()
    finally:
        server.stop()

    restarted = start_server(data_dir, test_config)
    try:
        kms = _boto3(make_client, restarted)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"durable"
        described = kms.describe_key(KeyId="alias/durable")["KeyMetadata"]
        assert described == key | {"Description": "survives restarts"}
        assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [
            {"TagKey": "t", "TagValue": "v"}
        ]
        assert kms.describe_key(KeyId=disabled)["KeyMetadata"]["KeyState"] == "Disabled"
        fresh = kms.encrypt(KeyId="alias/durable", Plaintext=b"again")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=fresh)["Plaintext"] == b"again"
    finally:
        assert restarted.stop() == 0


@pytest.mark.anyio
async def test_in_process_server_runs_on_the_service_clock(
    tmp_path: pathlib.Path, make_client: ClientFactory
) -> None:
    clock = FakeClock(start=time.time())
    settings = load_settings(overrides={"service.data_dir": str(tmp_path), "http.port": 0})
    async with open_service(settings, clock=clock, http=True) as service:
        assert service.http_address is not None
        host, port = service.http_address
        endpoint = f"http://{host}:{port}"
        kms = make_client(endpoint_url=endpoint)

        key = await anyio.to_thread.run_sync(functools.partial(new_key, kms))
        await anyio.to_thread.run_sync(
            functools.partial(kms.schedule_key_deletion, KeyId=key["KeyId"], PendingWindowInDays=7)
        )

        # The verifier reads the service's clock: 20 minutes on, boto3's signature is stale.
        clock.advance(20 * 60)
        with pytest.raises(ClientError) as caught:
            await anyio.to_thread.run_sync(functools.partial(kms.describe_key, KeyId=key["KeyId"]))
        assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert caught.value.response["Error"]["Message"].startswith("Signature expired: ")

        # A week on, the key is gone; a request signed on the service's time says so.
        clock.advance(7 * 86400)
        body = json.dumps({"KeyId": key["KeyId"]}).encode()
        with anyio.fail_after(10):
            while True:
                reply = await anyio.to_thread.run_sync(
                    functools.partial(
                        raw_request,
                        endpoint,
                        body,
                        target="TrentService.DescribeKey",
                        now=clock.now(),
                    )
                )
                if reply.status == 400:
                    break
                assert reply.json()["KeyMetadata"]["KeyState"] == "PendingDeletion"
                await anyio.sleep(0.02)
        assert reply.json()["__type"] == "NotFoundException"
