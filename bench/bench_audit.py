"""Audit cost: Encrypt throughput with durable audit, asynchronous audit and no audit.

Run: ``.venv/bin/python -m bench.bench_audit [--seconds S]`` (needs ``wrk`` for the HTTP
cases). Embedded: 64 and 256 concurrent tasks, with the service process's CPU time per
request (the audit writer process's is not in it: it runs on the other core); HTTP: wrk,
64 connections, one server process per mode, all started first and then loaded in turn for
``--rounds`` rounds (the median counts: this machine is shared and drifts).

Durable audit is a closed-loop latency cost as much as a CPU cost: each caller waits for the
commit of its event, so with few callers the event loop idles during commits (the "loop busy"
column says how much of the time it worked).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import boto3

import kms_actors
from bench import _wrk
from bench.bench_engine import embedded_case
from bench.bench_http import free_port, wait_http

CONCURRENCY = (64, 256)
MODES: dict[str, dict[str, Any]] = {
    "audit durable": {"audit.enabled": True, "audit.durable": True},
    "audit asynchronous": {"audit.enabled": True, "audit.durable": False},
    "audit off": {"audit.enabled": False},
}


def _writer_cpu() -> float:
    """Return the CPU seconds used so far by this process's audit writer processes (Linux;
    0 elsewhere): the children whose command line names ``_writer_process``."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for children in pathlib.Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            with contextlib.suppress(OSError):
                if b"_writer_process" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes():
                    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
                    utime, stime = fields.split()[11:13]  # stat fields 14 and 15
                    total += (int(utime) + int(stime)) / tick
    return total


async def _embedded(mode: dict[str, Any], seconds: float, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        async with kms_actors.open_kms(data_dir, overrides=mode) as kms:
            key_id = (await kms.create_key())["KeyMetadata"]["KeyId"]
            await embedded_case(kms, "Encrypt", [key_id], 256, min(seconds, 0.5), concurrency)
            writer = _writer_cpu()
            cpu, wall = time.process_time(), time.perf_counter()
            result = await embedded_case(kms, "Encrypt", [key_id], 256, seconds, concurrency)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            operations = result["ops_per_s"] * wall
            result["busy"] = cpu / wall
            result["cpu_us"] = cpu / operations * 1e6
            result["writer_us"] = (_writer_cpu() - writer) / operations * 1e6
            return result


@contextlib.contextmanager
def _http_server(
    mode: dict[str, Any], extra_env: dict[str, str] | None = None
) -> Iterator[Callable[[float], dict[str, Any]]]:
    """Start ``kms-actors serve`` in ``mode``; yield a function that runs wrk against it."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(os.environ, **(extra_env or {}), KMS_ACTORS_SERVICE_DATA_DIR=data_dir)
        for name, value in mode.items():
            env["KMS_ACTORS_" + name.replace(".", "_").upper()] = str(value).lower()
        args = [sys.executable, "-m", "kms_actors", "serve", "--port", str(port)]
        server = subprocess.Popen(
            [*args, "--log-level", "WARNING"], env=env, stdout=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_http(url + "health")
            kms = boto3.client(
                "kms",
                endpoint_url=url,
                region_name=_wrk.REGION,
                aws_access_key_id=_wrk.ACCESS_KEY,
                aws_secret_access_key=_wrk.SECRET_KEY,
            )
            key_id = kms.create_key()["KeyMetadata"]["KeyId"]
            text = base64.b64encode(os.urandom(256)).decode()
            body = json.dumps({"KeyId": key_id, "Plaintext": text}).encode()
            headers = _wrk.signed(url, "TrentService.Encrypt", body)
            yield lambda seconds: _wrk.run_wrk(url, [(headers, body)], seconds, 64)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _http_rounds(seconds: float, rounds: int) -> dict[str, list[dict[str, Any]]]:
    """Run every mode's server at once and wrk against them in turn, ``rounds`` times.

    Alternating rounds spread the machine's drifts (other tenants, CPU frequency) over all
    modes, so their medians compare better than one run of each.
    """
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in MODES}
    with contextlib.ExitStack() as stack:
        runners = {label: stack.enter_context(_http_server(mode)) for label, mode in MODES.items()}
        for run in runners.values():
            run(min(seconds, 1.0))  # warm up: key cache, first connections
        for _ in range(rounds):
            for label, run in runners.items():
                results[label].append(run(seconds))
    return results


def main() -> None:
    """Run every mode, embedded and over HTTP, and print the costs."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating HTTP rounds per mode (median)"
    )
    args = parser.parse_args()
    options = {"use_uvloop": True} if sys.platform == "linux" else {}
    rates: dict[str, float] = {}
    print(
        "| case | ops/s | p50 µs | p99 µs | loop busy | CPU µs/op | writer CPU µs/event |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    wheres = [f"embedded x{concurrency}" for concurrency in CONCURRENCY]
    for concurrency, where in zip(CONCURRENCY, wheres, strict=True):
        for label, mode in MODES.items():
            result = anyio.run(_embedded, mode, args.seconds, concurrency, backend_options=options)
            rates[f"{where} {label}"] = result["ops_per_s"]
            writer = f"{result['writer_us']:.1f}" if result["writer_us"] else "-"
            print(
                f"| {where}, Encrypt 256 B, {label} | {result['ops_per_s']:,.0f} | "
                f"{result['p50_us']:,.0f} | {result['p99_us']:,.0f} | "
                f"{result['busy']:.0%} | {result['cpu_us']:.1f} | {writer} |",
                flush=True,
            )
    http = _http_rounds(args.seconds, args.rounds)
    for label, results in http.items():
        rate = statistics.median(result["ops_per_s"] for result in results)
        rates[f"HTTP {label}"] = rate
        p50 = statistics.median(result["p50_us"] for result in results)
        p99 = statistics.median(result["p99_us"] for result in results)
        each = ", ".join(f"{result['ops_per_s']:,.0f}" for result in results)
        print(
            f"| HTTP x64, Encrypt 256 B, {label} (median of {each}) | {rate:,.0f} | "
            f"{p50:,.0f} | {p99:,.0f} | | | |",
            flush=True,
        )
    print()
    for where in (*wheres, "HTTP"):
        off = rates[f"{where} audit off"]
        for label in ("audit durable", "audit asynchronous"):
            cost = 1 - rates[f"{where} {label}"] / off
            print(f"{where}: {label} costs {cost:.0%} of the audit-off rate")


if __name__ == "__main__":
    main()
