"""HTTP benchmark: signed Encrypt/Decrypt over keep-alive connections, next to bare aiohttp.

Run: ``.venv/bin/python -m bench.bench_http [--seconds S] [--connections C] [--json PATH]``
(needs ``wrk``: ``apt-get install wrk``).

wrk replays one SigV4-signed request per case (a signature stays valid for 15 minutes), from
one thread, so the generator is not the bottleneck; the server runs in its own process.
The bare aiohttp handler (read the body, answer a constant) runs in the same run with the same
request size, so the cost of our stack is a ratio.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import boto3

from bench import _wrk

ACCESS_KEY, SECRET_KEY, REGION = _wrk.ACCESS_KEY, _wrk.SECRET_KEY, _wrk.REGION
signed = _wrk.signed
ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Wait until something listens on the loopback ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def wrk(
    url: str, headers: dict[str, str], body: bytes, seconds: float, connections: int
) -> dict[str, Any]:
    """Run wrk replaying one signed request; return throughput and latency percentiles."""
    return _wrk.run_wrk(url, [(headers, body)], seconds, connections)


def main() -> None:
    """Run the HTTP cases and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", default="bench/results/http.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    results: list[dict[str, Any]] = []
    print("| case | req/s | p50 µs | p99 µs | errors |\n|---|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory() as data_dir:
        port, bare_port, minimal_port = free_port(), free_port(), free_port()
        env = dict(os.environ, KMS_ACTORS_SERVICE_DATA_DIR=data_dir)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kms_actors",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "WARNING",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        bare = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_server", str(bare_port)], cwd=ROOT
        )
        minimal = subprocess.Popen(
            [sys.executable, "-m", "bench.minimal_server", str(minimal_port)], cwd=ROOT
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_http(url + "health")
            wait_port(bare_port)
            wait_port(minimal_port)
            kms = boto3.client(
                "kms",
                endpoint_url=url,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            )
            key_id = kms.create_key()["KeyMetadata"]["KeyId"]
            context = {"tenant": "bench"}
            for size in (256, 4096):
                plaintext = os.urandom(size)
                blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)[
                    "CiphertextBlob"
                ]
                cases = {
                    "Encrypt": {
                        "KeyId": key_id,
                        "Plaintext": plaintext,
                        "EncryptionContext": context,
                    },
                    "Decrypt": {"CiphertextBlob": blob, "EncryptionContext": context},
                }
                for operation, params in cases.items():
                    body = json.dumps(
                        {
                            k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
                            for k, v in params.items()
                        }
                    ).encode()
                    headers = signed(url, f"TrentService.{operation}", body)
                    result = wrk(url, headers, body, args.seconds, args.connections)
                    result["case"] = f"HTTP {operation} {size} B, hot key"
                    results.append(result)
                    print(_row(result), flush=True)
                body = json.dumps(
                    {"Plaintext": base64.b64encode(plaintext).decode(), "KeyId": key_id}
                ).encode()
                bare_url = f"http://127.0.0.1:{bare_port}/"
                result = wrk(
                    bare_url,
                    signed(bare_url, "TrentService.Encrypt", body),
                    body,
                    args.seconds,
                    args.connections,
                )
                result["case"] = f"bare aiohttp POST {size} B"
                results.append(result)
                print(_row(result), flush=True)
                minimal_url = f"http://127.0.0.1:{minimal_port}/"
                headers = signed(minimal_url, "TrentService.Encrypt", body)
                result = wrk(minimal_url, headers, body, args.seconds, args.connections)
                result["case"] = f"minimal aiohttp+SigV4+AES-GCM {size} B"
                results.append(result)
                print(_row(result), flush=True)
        finally:
            for process in (server, bare, minimal):
                process.terminate()
                process.wait(timeout=30)
    for size in (256, 4096):
        bare_rate = next(
            r["ops_per_s"] for r in results if r["case"] == f"bare aiohttp POST {size} B"
        )
        for operation in ("Encrypt", "Decrypt"):
            ours = next(
                r["ops_per_s"]
                for r in results
                if r["case"] == f"HTTP {operation} {size} B, hot key"
            )
            minimal_rate = next(
                r["ops_per_s"]
                for r in results
                if r["case"] == f"minimal aiohttp+SigV4+AES-GCM {size} B"
            )
            print(
                f"{operation} {size} B: {ours / bare_rate:.0%} of bare aiohttp, "
                f"{ours / minimal_rate:.0%} of the minimal SigV4+AES-GCM handler"
            )
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"connections": args.connections, "results": results}, indent=2) + "\n"
    )


def _row(result: dict[str, Any]) -> str:
    return (
        f"| {result['case']} | {result['ops_per_s']:,.0f} | {result['p50_us']} | "
        f"{result['p99_us']} | {result['errors']} |"
    )


if __name__ == "__main__":
    main()
