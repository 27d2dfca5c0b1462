"""The benchmark suite: one command, every number side by side in one run.

Run: ``.venv/bin/python -m bench.run [--seconds 3] [--json bench/results/latest.json]
[--update-readme]`` (needs ``wrk``; moto's server is measured when ``moto[server]`` is installed).

Cases (each Encrypt/Decrypt at 256 B and 4 KiB, GenerateDataKey AES_256; hot key and 100 keys):
raw ``cryptography`` (the ceiling), embedded client, our HTTP server (SigV4, keep-alive,
64 connections, wrk replaying pre-signed requests), a bare aiohttp handler and a minimal
SigV4 + AES-GCM handler on the same request sizes, and moto's server on the same workload.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import anyio
import boto3

import kms_actors
from bench import _wrk
from bench.bench_engine import embedded_case, raw_rate
from bench.bench_http import free_port, wait_http, wait_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "bench" / "README.md"
SIZES = (256, 4096)
CONTEXT = {"tenant": "bench"}


def _row(result: dict[str, Any]) -> str:
    p50 = f"{result['p50_us']:,.0f}" if "p50_us" in result else "-"
    p99 = f"{result['p99_us']:,.0f}" if "p99_us" in result else "-"
    return f"| {result['case']} | {result['ops_per_s']:,.0f} | {p50} | {p99} |"


def _emit(results: list[dict[str, Any]], result: dict[str, Any]) -> None:
    results.append(result)
    print(_row(result), flush=True)


# --- embedded -----------------------------------------------------------------------------------


async def _embedded(seconds: float, results: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        async with kms_actors.open_kms(data_dir) as kms:
            hot = [(await kms.create_key())["KeyMetadata"]["KeyId"]]
            spread = [(await kms.create_key())["KeyMetadata"]["KeyId"] for _ in range(100)]
            for label, keys in (("hot key", hot), ("100 keys", spread)):
                for operation in ("Encrypt", "Decrypt"):
                    for size in SIZES:
                        result = await embedded_case(kms, operation, keys, size, seconds, 64)
                        result["case"] = f"embedded {operation} {size} B, {label}"
                        _emit(results, result)
                result = await embedded_case(kms, "GenerateDataKey", keys, 32, seconds, 64)
                result["case"] = f"embedded GenerateDataKey, {label}"
                _emit(results, result)


# --- HTTP servers -------------------------------------------------------------------------------


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str] | None = None) -> Iterator[None]:
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _http_cases(url: str, label: str, seconds: float, results: list[dict[str, Any]]) -> None:
    """Run the Encrypt/Decrypt/GenerateDataKey cases against any KMS endpoint at ``url``."""
    kms = boto3.client(
        "kms",
        endpoint_url=url,
        region_name=_wrk.REGION,
        aws_access_key_id=_wrk.ACCESS_KEY,
        aws_secret_access_key=_wrk.SECRET_KEY,
    )
    hot = [kms.create_key()["KeyMetadata"]["KeyId"]]
    spread = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(100)]
    for keys_label, keys in (("hot key", hot), ("100 keys", spread)):
        for size in SIZES:
            plaintext = os.urandom(size)
            encrypts, decrypts = [], []
            for key_id in keys:
                blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=CONTEXT)[
                    "CiphertextBlob"
                ]
                text = base64.b64encode(plaintext).decode()
                body = json.dumps(
                    {"KeyId": key_id, "Plaintext": text, "EncryptionContext": CONTEXT}
                ).encode()
                encrypts.append((_wrk.signed(url, "TrentService.Encrypt", body), body))
                body = json.dumps(
                    {
                        "CiphertextBlob": base64.b64encode(blob).decode(),
                        "EncryptionContext": CONTEXT,
                    }
                ).encode()
                decrypts.append((_wrk.signed(url, "TrentService.Decrypt", body), body))
            for operation, requests in (("Encrypt", encrypts), ("Decrypt", decrypts)):
                result = _wrk.run_wrk(url, requests, seconds, 64)
                result["case"] = f"{label} {operation} {size} B, {keys_label}"
                _emit(results, result)
        requests = []
        for key_id in keys:
            body = json.dumps({"KeyId": key_id, "KeySpec": "AES_256"}).encode()
            requests.append((_wrk.signed(url, "TrentService.GenerateDataKey", body), body))
        result = _wrk.run_wrk(url, requests, seconds, 64)
        result["case"] = f"{label} GenerateDataKey, {keys_label}"
        _emit(results, result)


def _reference_cases(seconds: float, results: list[dict[str, Any]]) -> None:
    """Bare aiohttp and the minimal SigV4 + AES-GCM handler, same request sizes."""
    for module, label in (
        ("bench.bare_server", "bare aiohttp"),
        ("bench.minimal_server", "minimal aiohttp+SigV4+AES-GCM"),
    ):
        port = free_port()
        with _process([sys.executable, "-m", module, str(port)]):
            wait_port(port)
            url = f"http://127.0.0.1:{port}/"
            for size in SIZES:
                text = base64.b64encode(os.urandom(size)).decode()
                body = json.dumps(
                    {"KeyId": "k", "Plaintext": text, "EncryptionContext": CONTEXT}
                ).encode()
                result = _wrk.run_wrk(
                    url, [(_wrk.signed(url, "TrentService.Encrypt", body), body)], seconds, 64
                )
                result["case"] = f"{label} POST {size} B"
                _emit(results, result)


def _ours(seconds: float, results: list[dict[str, Any]]) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(os.environ, KMS_ACTORS_SERVICE_DATA_DIR=data_dir)
        args = [
            sys.executable,
            "-m",
            "kms_actors",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ]
        with _process(args, env):
            url = f"http://127.0.0.1:{port}/"
            wait_http(url + "health")
            _http_cases(url, "kms_actors HTTP", seconds, results)


def _moto(seconds: float, results: list[dict[str, Any]]) -> bool:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        print("| moto server | not installed (pip install 'moto[server]') | - | - |", flush=True)
        return False
    port = free_port()
    with _process([sys.executable, "-m", "moto.server", "-p", str(port)]):
        wait_port(port)
        time.sleep(0.5)
        _http_cases(f"http://127.0.0.1:{port}/", "moto server", seconds, results)
    return True


# --- report -------------------------------------------------------------------------------------


def _rate(results: list[dict[str, Any]], case: str) -> float | None:
    for result in results:
        if result["case"] == case:
            return float(result["ops_per_s"])
    return None


def _ratios(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for keys in ("hot key", "100 keys"):
        for operation in ("Encrypt", "Decrypt"):
            for size in SIZES:
                suffix = f"{operation} {size} B, {keys}"
                ours = _rate(results, f"kms_actors HTTP {suffix}")
                parts = []
                for label, case in (
                    ("moto", f"moto server {suffix}"),
                    ("bare aiohttp", f"bare aiohttp POST {size} B"),
                    ("minimal SigV4+AES-GCM", f"minimal aiohttp+SigV4+AES-GCM POST {size} B"),
                ):
                    other = _rate(results, case)
                    if ours and other:
                        parts.append(f"{ours / other:.2f}x {label}")
                embedded = _rate(results, f"embedded {suffix}")
                raw = _rate(results, f"raw crypto encrypt {size} B")
                if embedded and raw:
                    parts.append(f"embedded = {embedded / raw:.0%} of raw crypto")
                lines.append(f"- HTTP {suffix}: " + ", ".join(parts))
        ours = _rate(results, f"kms_actors HTTP GenerateDataKey, {keys}")
        moto = _rate(results, f"moto server GenerateDataKey, {keys}")
        if ours and moto:
            lines.append(f"- HTTP GenerateDataKey, {keys}: {ours / moto:.2f}x moto")
    return lines


def _versions() -> dict[str, str]:
    names = ["kms_actors", "aiohttp", "anyio", "cryptography", "msgspec", "uvloop", "moto", "boto3"]
    found = {}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    found["wrk"] = (wrk.stdout or wrk.stderr).split("\n")[0].split(" [")[0]
    return found


def _update_readme(table: str) -> None:
    text = README.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _old, tail = rest.split(end, 1)
        README.write_text(f"{head}{start}\n{table}\n{end}{tail}")


def main() -> None:
    """Run the whole suite."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", default="bench/results/latest.json")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    started = time.monotonic()
    header = "| case | ops/s | p50 µs | p99 µs |\n|---|---:|---:|---:|"
    print(header, flush=True)
    results: list[dict[str, Any]] = []
    for size in SIZES:
        _emit(results, raw_rate(size, args.seconds))
    options = {"use_uvloop": True} if sys.platform == "linux" else {}
    anyio.run(_embedded, args.seconds, results, backend_options=options)
    _ours(args.seconds, results)
    _reference_cases(args.seconds, results)
    _moto(args.seconds, results)
    ratios = _ratios(results)
    print("\n" + "\n".join(ratios))
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "versions": _versions(),
        "seconds_per_case": args.seconds,
        "connections": 64,
        "results": results,
        "ratios": ratios,
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }
    path = ROOT / args.json
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path} in {report['elapsed_seconds']} s")
    if args.update_readme:
        versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        table = "\n".join(
            [
                f"Measured {report['date']} on {machine['cpus']} cores, {machine['platform']}, "
                f"Python {machine['python']}; {versions}. {args.seconds:g} s per case, "
                "64 concurrent callers / connections.",
                "",
                header,
                *(_row(r) for r in results),
                "",
                *ratios,
            ]
        )
        _update_readme(table)


if __name__ == "__main__":
    main()
