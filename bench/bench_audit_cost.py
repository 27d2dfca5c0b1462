"""Where durable audit's cost goes: the same Encrypt load with parts of the audit left out.

Run: ``.venv/bin/python -m bench.bench_audit_cost [--seconds S] [--rounds N]`` (needs ``wrk``
for the HTTP rows). Each variant runs in processes of its own, changed by
``bench/_variants/sitecustomize.py`` (the package has no switch for any of this):

- audit off, and audit durable as shipped;
- durable, writer stores nothing: everything but SQLite and its fsync;
- durable, answers released at once: events still go to the writer, nobody waits for them;
- durable, events captured only: the request path's own audit work (capture, redaction);
- durable, no event at all: only the bookkeeping of an audited request (the audited path's
  checks, the request-audit context, the deferred answer), no event captured, sent or
  waited for.

Embedded: 64 tasks, one process per variant and round. HTTP: wrk, 64 connections, one
server per variant, all started first and loaded in turn. The median of the rounds counts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
from typing import Any

import anyio

from bench import bench_audit
from bench._variants import sitecustomize

VARIANTS: dict[str, tuple[str, str]] = {
    "audit off": ("audit off", ""),
    "durable, as shipped": ("audit durable", ""),
    "durable, writer stores nothing": ("audit durable", "null-store"),
    "durable, answers released at once": ("audit durable", "no-wait"),
    "durable, events captured only": ("audit durable", "no-io"),
    "durable, no event at all": ("audit durable", "no-event"),
}
_HERE = pathlib.Path(__file__).resolve().parent


def _variant_env(variant: str) -> dict[str, str]:
    if not variant:
        return {}
    path = os.environ.get("PYTHONPATH")
    directory = str(_HERE / "_variants")
    return {
        "PYTHONPATH": directory + (os.pathsep + path if path else ""),
        sitecustomize.VARIABLE: variant,
    }


def _embedded_once(mode: str, variant: str, seconds: float) -> dict[str, Any]:
    """Run one embedded case in a process of its own (so a variant changes only it)."""
    env = dict(os.environ, **_variant_env(variant))
    args = [sys.executable, "-m", "bench.bench_audit_cost", "--one", mode, "--seconds"]
    done = subprocess.run(
        [*args, str(seconds)], env=env, cwd=_HERE.parent, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} / {variant or 'as shipped'} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _one(mode: str, seconds: float) -> None:
    options = {"use_uvloop": True} if sys.platform == "linux" else {}
    result = anyio.run(
        bench_audit._embedded, bench_audit.MODES[mode], seconds, 64, backend_options=options
    )
    print(json.dumps(result))


def main() -> None:
    """Run every variant, embedded and over HTTP, and print what each part costs."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args.one, args.seconds)
        return
    print("| case | embedded x64 ops/s | CPU µs/op | HTTP x64 req/s |\n|---|---:|---:|---:|")
    embedded: dict[str, list[dict[str, Any]]] = {label: [] for label in VARIANTS}
    for _ in range(args.rounds):
        for label, (mode, variant) in VARIANTS.items():
            embedded[label].append(_embedded_once(mode, variant, args.seconds))
    http: dict[str, list[float]] = {label: [] for label in VARIANTS}
    with contextlib.ExitStack() as stack:
        runners = {
            label: stack.enter_context(
                bench_audit._http_server(bench_audit.MODES[mode], _variant_env(variant))
            )
            for label, (mode, variant) in VARIANTS.items()
        }
        for run in runners.values():
            run(min(args.seconds, 1.0))
        for _ in range(args.rounds):
            for label, run in runners.items():
                http[label].append(run(args.seconds)["ops_per_s"])
    off_embedded = statistics.median(r["ops_per_s"] for r in embedded["audit off"])
    off_http = statistics.median(http["audit off"])
    for label in VARIANTS:
        rate = statistics.median(r["ops_per_s"] for r in embedded[label])
        cpu = statistics.median(r["cpu_us"] for r in embedded[label])
        rate_http = statistics.median(http[label])
        print(
            f"| {label} | {rate:,.0f} ({1 - rate / off_embedded:.0%} less) | {cpu:.1f} | "
            f"{rate_http:,.0f} ({1 - rate_http / off_http:.0%} less) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
