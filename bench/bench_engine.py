"""Embedded engine benchmark: Encrypt/Decrypt throughput and latency, next to raw crypto.

Run: ``.venv/bin/python -m bench.bench_engine [--seconds S] [--concurrency C] [--json PATH]``

Every case runs in this one process, one after another, so the numbers compare side by side:
- raw: the same crypto the service does per request (SP 800-108 derivation + AES-256-GCM),
  called in a tight loop with no service around it (the ceiling);
- embedded: ``kms_actors.open_kms`` clients, C concurrent tasks, hot key (1) or 100 keys,
  256 B and 4 KiB payloads, HSM pool inline (default) and batched-on-threads modes.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

import anyio
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import kms_actors

SIZES = (256, 4096)


def percentile(sorted_ns: list[int], q: float) -> float:
    """Return the q-quantile of sorted nanosecond samples, in microseconds."""
    if not sorted_ns:
        return 0.0
    index = min(len(sorted_ns) - 1, round(q * (len(sorted_ns) - 1)))
    return sorted_ns[index] / 1000


def raw_rate(size: int, seconds: float) -> dict[str, Any]:
    """Measure the service's per-request crypto alone: derive a key, AES-GCM encrypt."""
    material = os.urandom(32)
    plaintext = os.urandom(size)
    aad = os.urandom(80)
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            salt = os.urandom(16)
            key = hmac.digest(
                material, b"\x00\x00\x00\x01label\x00" + salt + b"\x00\x00\x01\x00", "sha256"
            )
            AESGCM(key).encrypt(os.urandom(12), plaintext, aad)
        count += 200
    elapsed = time.perf_counter() - start
    return {"case": f"raw crypto encrypt {size} B", "ops_per_s": count / elapsed}


async def embedded_case(
    kms: Any, operation: str, key_ids: list[str], size: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    """Run one embedded case with ``concurrency`` tasks for ``seconds``."""
    plaintext = os.urandom(size)
    context = {"tenant": "bench", "purpose": "throughput"}
    blobs = {}
    for key_id in key_ids:
        blobs[key_id] = (
            await kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)
        )["CiphertextBlob"]
    samples: list[int] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        i = index
        clock = time.perf_counter_ns
        while time.perf_counter() < stop_at:
            key_id = key_ids[i % len(key_ids)]
            i += 1
            t0 = clock()
            try:
                if operation == "Encrypt":
                    await kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)
                elif operation == "GenerateDataKey":
                    await kms.generate_data_key(
                        KeyId=key_id, KeySpec="AES_256", EncryptionContext=context
                    )
                else:
                    await kms.decrypt(CiphertextBlob=blobs[key_id], EncryptionContext=context)
            except kms_actors.KmsError:
                errors += 1
            samples.append(clock() - t0)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for index in range(concurrency):
            tg.start_soon(worker, index)
    elapsed = time.perf_counter() - start
    samples.sort()
    return {
        "ops_per_s": len(samples) / elapsed,
        "p50_us": percentile(samples, 0.50),
        "p99_us": percentile(samples, 0.99),
        "errors": errors,
    }


async def run_embedded(args: argparse.Namespace, inline: bool) -> list[dict[str, Any]]:
    """Run every embedded case against one fresh service."""
    results = []
    with tempfile.TemporaryDirectory() as data_dir:
        overrides = {"hsm.inline_symmetric": inline, "keys.max_customer_keys": 1000}
        async with kms_actors.open_kms(data_dir, overrides=overrides) as kms:
            hot = [(await kms.create_key())["KeyMetadata"]["KeyId"]]
            spread = [(await kms.create_key())["KeyMetadata"]["KeyId"] for _ in range(100)]
            for operation in ("Encrypt", "Decrypt"):
                for size in SIZES:
                    for label, keys in (("hot key", hot), ("100 keys", spread)):
                        result = await embedded_case(
                            kms, operation, keys, size, args.seconds, args.concurrency
                        )
                        mode = "inline" if inline else "batched threads"
                        result["case"] = f"embedded {operation} {size} B, {label}, {mode}"
                        results.append(result)
                        print(_row(result), flush=True)
    return results


def _row(result: dict[str, Any]) -> str:
    p50 = f"{result['p50_us']:.0f}" if "p50_us" in result else "-"
    p99 = f"{result['p99_us']:.0f}" if "p99_us" in result else "-"
    return f"| {result['case']} | {result['ops_per_s']:,.0f} | {p50} | {p99} |"


def main() -> None:
    """Run the suite and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", default="bench/results/engine.json")
    parser.add_argument("--no-batched", action="store_true", help="skip the batched-mode cases")
    args = parser.parse_args()
    print("| case | ops/s | p50 µs | p99 µs |\n|---|---:|---:|---:|", flush=True)
    results = []
    for size in SIZES:
        result = raw_rate(size, args.seconds)
        results.append(result)
        print(_row(result), flush=True)
    options = {"use_uvloop": True} if sys.platform == "linux" else {}
    results += anyio.run(run_embedded, args, True, backend_options=options)
    if not args.no_batched:
        results += anyio.run(run_embedded, args, False, backend_options=options)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": {"kms_actors": kms_actors.__version__},
        "concurrency": args.concurrency,
        "seconds_per_case": args.seconds,
        "results": results,
    }
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    hot = [r for r in results if "hot key, inline" in r["case"] and "Encrypt" in r["case"]]
    spread = [r for r in results if "100 keys, inline" in r["case"] and "Encrypt" in r["case"]]
    if hot and spread:
        ratio = statistics.mean(
            h["ops_per_s"] / s["ops_per_s"] for h, s in zip(hot, spread, strict=True)
        )
        print(f"\nhot key / 100 keys (Encrypt, inline): {ratio:.0%}")


if __name__ == "__main__":
    main()
