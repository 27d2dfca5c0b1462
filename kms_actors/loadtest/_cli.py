"""``kms-actors loadtest``: the command line, and one run from options to report."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import signal
import sys
from collections.abc import AsyncIterator

import anyio

from kms_actors.loadtest._html import render_html
from kms_actors.loadtest._load import share_of
from kms_actors.loadtest._model import Merged, WorkerResult
from kms_actors.loadtest._options import Options, UsageError, options_from_args
from kms_actors.loadtest._progress import Progress
from kms_actors.loadtest._report import Report, build_report, encode_report, load_report
from kms_actors.loadtest._setup import Plan, prepared, request_table
from kms_actors.loadtest._table import render_compare, render_table
from kms_actors.loadtest._target import (
    Credentials,
    Target,
    open_embedded_target,
    open_http_target,
    resolve_credentials,
)
from kms_actors.loadtest._workers import (
    RunFailed,
    Stopper,
    WorkerJob,
    connections_for,
    event_loop_options,
    run_in_process,
    run_processes,
)

_PROG = "kms-actors loadtest"
_EXAMPLES = """examples:
  kms-actors loadtest --endpoint http://127.0.0.1:4599 --op encrypt --concurrency 32 --duration 30
  kms-actors loadtest --endpoint URL --mix encrypt=70,decrypt=30 --rate 2000 --workers 2 --json a
  kms-actors loadtest --embedded --op generate-data-key --keys 10 --requests 100000 --report out/
  kms-actors loadtest compare a.json b.json
"""


class Interrupted(Exception):
    """Ctrl-C before the measurement started: nothing to report."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``loadtest`` command (and its ``compare`` subcommand) to a CLI."""
    parser = subparsers.add_parser(
        "loadtest",
        help="load-test a KMS endpoint or the embedded service",
        description="Load-test any endpoint speaking the AWS KMS API, or the embedded service.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Values are taken as text and checked by options_from_args, so a bad one is one line.
    where = parser.add_argument_group("target")
    where.add_argument("--endpoint", metavar="URL", help="KMS endpoint, e.g. http://127.0.0.1:4599")
    where.add_argument("--embedded", action="store_true", help="the service in-process (temp dir)")
    where.add_argument("--region", help="default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1")
    where.add_argument("--profile", help="AWS profile for credentials (needs botocore)")
    what = parser.add_argument_group("workload")
    what.add_argument(
        "--op",
        help="one operation (default encrypt): encrypt, decrypt, re-encrypt, "
        "generate-data-key, generate-data-key-without-plaintext, generate-random, describe-key",
    )
    what.add_argument("--mix", metavar="OP=W,...", help="weighted mix, e.g. encrypt=70,decrypt=30")
    what.add_argument("--payload-size", default="256", metavar="BYTES", help="plaintext size (256)")
    what.add_argument("--context", metavar="K=V,...", help="encryption context")
    what.add_argument("--keys", metavar="N", help="keys to create and spread over (1: one hot key)")
    what.add_argument(
        "--key-id", metavar="ID[,ID]", help="existing key(s) instead; nothing created"
    )
    how = parser.add_argument_group("load")
    how.add_argument("--concurrency", metavar="N", help="closed loop: N requests in flight (8)")
    how.add_argument(
        "--rate", metavar="R", help="open loop: R requests/s, latency from intended send"
    )
    how.add_argument("--duration", metavar="S", help="measure for S seconds (default 10)")
    how.add_argument("--requests", metavar="N", help="measure N requests instead")
    how.add_argument("--warmup", default="1", metavar="S", help="seconds not counted first (1)")
    how.add_argument("--workers", default="1", metavar="N", help="generator processes (1)")
    how.add_argument("--timeout", default="10", metavar="S", help="per-request timeout (10)")
    how.add_argument("--max-in-flight", default="10000", metavar="N", help="open-loop cap (10000)")
    out = parser.add_argument_group("output")
    out.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live progress on stderr (default: when stderr is a terminal)",
    )
    out.add_argument("--json", metavar="FILE", help="write the report (with histograms) as JSON")
    out.add_argument("--report", metavar="DIR", help="write an HTML report with charts to DIR")
    modes = parser.add_subparsers(dest="loadtest_mode", metavar="{compare}")
    compare = modes.add_parser("compare", help="show two --json reports side by side (B/A)")
    compare.add_argument("a", metavar="A.json")
    compare.add_argument("b", metavar="B.json")


def run(args: argparse.Namespace) -> int:
    """Run the ``loadtest`` command; return the exit status (2: bad usage, 130: interrupted)."""
    try:
        if getattr(args, "loadtest_mode", None) == "compare":
            text = render_compare(load_report(args.a), load_report(args.b), args.a, args.b)
            sys.stdout.write(text + "\n")
            return 0
        options = options_from_args(args)
        report = anyio.run(execute, options, backend_options=event_loop_options())
        write_outputs(report, options)
    except UsageError as error:
        _fail(str(error))
        return 2
    except RunFailed as error:
        _fail(str(error))
        return 1
    except Interrupted:
        _fail("interrupted before the measurement started")
        return 130
    sys.stdout.write(render_table(report) + "\n")
    return 130 if report.interrupted else 0


def _fail(message: str) -> None:
    sys.stderr.write(f"{_PROG}: {message}\n")


def write_outputs(report: Report, options: Options) -> None:
    """Write the ``--json`` file and the ``--report`` directory, if asked for.

    Raises:
        UsageError: A file cannot be written.
    """
    try:
        if options.json_path:
            with open(options.json_path, "wb") as file:
                file.write(encode_report(report))
        if options.report_dir:
            os.makedirs(options.report_dir, exist_ok=True)
            with open(
                os.path.join(options.report_dir, "index.html"), "w", encoding="utf-8"
            ) as page:
                page.write(render_html(report))
            with open(os.path.join(options.report_dir, "report.json"), "wb") as file:
                file.write(encode_report(report))
    except OSError as error:
        raise UsageError(f"cannot write {error.filename}: {error.strerror}") from None


async def execute(options: Options) -> Report:
    """Set up, measure, clean up; a first Ctrl-C ends the measurement early, a second aborts.

    Raises:
        UsageError: Bad usage found while setting up (unreachable endpoint, credentials, key).
        RunFailed: A worker failed.
        Interrupted: Ctrl-C came before the measurement started.
    """
    stopper = Stopper()
    outcome: list[Report] = []
    failure: list[Exception] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_signals, stopper, tg.cancel_scope)
        try:
            outcome.append(await _measure(options, stopper))
        except Exception as error:  # raised below, outside the group, so not in an ExceptionGroup
            failure.append(error)
        finally:
            tg.cancel_scope.cancel()
    if failure:
        raise failure[0]
    if not outcome:
        raise Interrupted()
    return outcome[0]


async def _watch_signals(stopper: Stopper, scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if stopper.measuring and not stopper.requested:
                stopper.stop()
            else:
                scope.cancel()


@contextlib.asynccontextmanager
async def _open_target(options: Options, credentials: Credentials | None) -> AsyncIterator[Target]:
    if options.embedded:
        async with open_embedded_target() as embedded:
            yield embedded
    else:
        assert credentials is not None
        async with open_http_target(options, credentials, connections_for(options)) as http:
            yield http


async def _measure(options: Options, stopper: Stopper) -> Report:
    credentials = None if options.embedded else resolve_credentials(options.profile)
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    async with _open_target(options, credentials) as target, prepared(target, options) as plan:
        results = await _drive(options, target, credentials, plan, stopper)
    return build_report(
        options,
        Merged(results),
        started_at=started_at,
        target=target.description,
        keys_created=list(plan.created),
        keys_deleted=plan.deleted,
        interrupted=stopper.requested,
    )


async def _drive(
    options: Options,
    target: Target,
    credentials: Credentials | None,
    plan: Plan,
    stopper: Stopper,
) -> list[WorkerResult]:
    requests, slots = request_table(plan, options)
    progress = Progress(options)
    stopper.measuring = True
    try:
        if options.workers == 1:
            share = share_of(options, 0, slots)
            return [await run_in_process(target.sender(requests), share, progress, stopper)]
        assert credentials is not None
        jobs = [
            WorkerJob(
                options=options,
                credentials=credentials,
                requests=requests,
                share=share_of(options, index, slots),
            )
            for index in range(options.workers)
        ]
        return await run_processes(jobs, progress, stopper)
    finally:
        stopper.measuring = False
        progress.finish()
