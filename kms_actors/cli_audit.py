"""``kms-actors audit``: check the audit chain, list events, export and prune old ones.

- ``verify`` walks ``<data_dir>/audit.sqlite3`` with the checkpoint key the service derives
  from its root key, and reports the first broken, missing or reordered record (exit 1).
- ``list`` filters events by time, key, principal, event name, account and Region, newest
  first, as a table or as JSON Lines (the stored CloudTrail records).
- ``export`` writes the events older than a time to a JSON Lines file, then prunes them,
  keeping the chain verifiable across the cut.

The data directory and root key are found as ``kms-actors serve`` finds them (``--config``,
``--data-dir``, ``KMS_ACTORS_*``), and the commands may run while the server does. Times are
ISO 8601 (UTC unless an offset is given) or epoch seconds. A usage mistake is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import pathlib
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

import anyio

from kms_actors.audit import (
    AuditRecord,
    AuditStore,
    ChainBroken,
    VerifyReport,
    export_and_prune,
    format_event_time,
    list_events,
    open_audit_store,
    verify_chain,
)
from kms_actors.config import ConfigError, Settings, load_settings
from kms_actors.hsm import CheckpointSigner, checkpoint_signer
from kms_actors.service import load_root_key
from kms_actors.store import AUDIT_DATABASE_NAME, GENESIS_HASH, StoreError

_PROG = "kms-actors audit"
_PAGE = 1000
_TABLE_COLUMNS = ("TIME", "EVENT", "PRINCIPAL", "KEY", "ERROR")
_EXAMPLES = """examples:
  kms-actors audit verify --data-dir ./kms-data
  kms-actors audit list --key 1234abcd-12ab-34cd-56ef-1234567890ab --since 2026-01-01
  kms-actors audit list --principal arn:aws:iam::111122223333:user/dev --format jsonl
  kms-actors audit export --before 2026-01-01T00:00:00Z --output audit-2025.jsonl
"""


class UsageError(Exception):
    """A bad command line: reported as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message}\n")
        raise SystemExit(2)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # A subcommand's leftovers would otherwise be refused by the top-level parser, with
        # its usage text: refuse them here, in one line.
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``audit`` command (verify, list, export) to a CLI."""
    parser = subparsers.add_parser(
        "audit",
        help="verify, list and export the audit trail",
        description="Verify, list and export the audit trail of a data directory.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = _Parser(add_help=False)
    where.add_argument("--config", help="TOML settings file (default: config/kms.toml)")
    where.add_argument("--data-dir", help="data directory (overrides service.data_dir)")
    # Not required here: ``run`` says which command is missing in one line.
    sub = parser.add_subparsers(dest="audit_command", metavar="COMMAND", parser_class=_Parser)
    sub.add_parser(
        "verify",
        parents=[where],
        help="check the hash chain and its signed checkpoints",
        description="Check the hash chain and its signed checkpoints; exit 1 if broken.",
    )
    listing = sub.add_parser(
        "list",
        parents=[where],
        help="list events, newest first",
        description="List audit events, newest first. Filters combine (AND).",
    )
    # Values are taken as text and checked by ``run``, so a bad one is one line.
    listing.add_argument("--since", metavar="TIME", help="events at or after TIME")
    listing.add_argument("--until", metavar="TIME", help="events at or before TIME")
    listing.add_argument("--key", metavar="KEY", help="key id, key ARN, alias name or alias ARN")
    listing.add_argument("--principal", metavar="ARN", help="the caller's principal ARN")
    listing.add_argument("--event", metavar="NAME", help="event name, e.g. Decrypt")
    listing.add_argument("--account", metavar="ID", help="the account whose events to list")
    listing.add_argument("--region", metavar="REGION", help="the Region, e.g. us-east-1")
    listing.add_argument("--limit", metavar="N", default="100", help="at most N events (0: all)")
    listing.add_argument("--format", choices=("table", "jsonl"), default="table")
    export = sub.add_parser(
        "export",
        parents=[where],
        help="export old events to JSON Lines, then prune them",
        description="Export the events before TIME to a new JSON Lines file, then prune them "
        "from the log (the chain stays verifiable).",
    )
    export.add_argument("--before", metavar="TIME", help="export events older than TIME")
    export.add_argument("--output", metavar="FILE", help="the file to create (never replaced)")


def run(args: argparse.Namespace) -> int:
    """Run ``kms-actors audit ...`` and return the exit status (0 ok, 1 broken, 2 usage)."""
    try:
        job = _job(args)
        return anyio.run(job)
    except (UsageError, ConfigError) as error:
        sys.stderr.write(f"{_PROG}: {error}\n")
        return 2
    except BrokenPipeError:
        # The reader went away (``| head``): point stdout at /dev/null so that the
        # interpreter's final flush does not complain again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (StoreError, OSError) as error:
        sys.stderr.write(f"{_PROG}: {error}\n")
        return 1


def _job(args: argparse.Namespace) -> Callable[[], Awaitable[int]]:
    """Check the command line and return the command to run."""
    command = args.audit_command
    if command is None:
        raise UsageError("choose a command: verify, list or export")
    overrides = {"service.data_dir": args.data_dir} if args.data_dir else {}
    settings = load_settings(args.config, overrides=overrides)
    audit_file = settings.data_path / AUDIT_DATABASE_NAME
    if not audit_file.is_file():
        raise UsageError(f"no audit log in {settings.data_path} ({audit_file} does not exist)")
    if command == "verify":
        signer = _signer(settings)
        return lambda: _verify(settings.data_path, signer)
    if command == "list":
        return _list_job(args, settings.data_path)
    before = _time(_required(args.before, "--before"), "--before")
    output = pathlib.Path(_required(args.output, "--output"))
    if output.exists():
        raise UsageError(f"{output} exists; an export never replaces a file")
    if not output.parent.is_dir():
        raise UsageError(f"no directory {output.parent} for {output}")
    signer = _signer(settings)
    return lambda: _export(settings.data_path, signer, before, output)


def _required(value: str | None, option: str) -> str:
    if not value:
        raise UsageError(f"the option {option} is required")
    return value


def _signer(settings: Settings) -> CheckpointSigner:
    """Return the service's checkpoint signer, never creating a root key.

    A new root key would sign nothing that is stored, so every checkpoint would look forged.
    """
    from_env = settings.root_key.env and os.environ.get(settings.root_key.env)
    if not from_env and not settings.root_key_path.is_file():
        raise UsageError(
            f"no root key: {settings.root_key_path} does not exist and "
            f"{settings.root_key.env or 'no variable'} is not set"
        )
    try:
        return checkpoint_signer(load_root_key(settings))
    except ValueError as error:
        raise UsageError(str(error)) from None


def _time(text: str, option: str) -> float:
    """Return epoch seconds of ISO 8601 text (UTC unless it says otherwise) or epoch seconds."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise UsageError(f"invalid {option} {text!r}: not a time")
        return seconds
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise UsageError(
            f"invalid {option} {text!r}: expected ISO 8601 (2026-01-31T12:00:00Z) or epoch seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _list_job(args: argparse.Namespace, data_dir: pathlib.Path) -> Callable[[], Awaitable[int]]:
    since = _time(args.since, "--since") if args.since else None
    until = _time(args.until, "--until") if args.until else None
    if since is not None and until is not None and since > until:
        raise UsageError("--since is after --until")
    try:
        limit = int(args.limit)
    except ValueError:
        raise UsageError(f"invalid --limit {args.limit!r}: expected a whole number") from None
    if limit < 0:
        raise UsageError(f"invalid --limit {limit}: must be 0 (all) or more")

    async def list_job() -> int:
        async with open_audit_store(data_dir) as store:
            records: list[AuditRecord] = []
            after: int | None = None
            while limit == 0 or len(records) < limit:
                want = _PAGE if limit == 0 else min(_PAGE, limit - len(records))
                page = await list_events(
                    store,
                    account_id=args.account,
                    region=args.region,
                    start=since,
                    end=until,
                    key=args.key,
                    principal=args.principal,
                    event_name=args.event,
                    limit=want,
                    after_seq=after,
                )
                records.extend(page)
                if len(page) < want:
                    break
                after = page[-1].seq
        if args.format == "jsonl":
            sys.stdout.buffer.writelines(record.event_json + b"\n" for record in records)
            sys.stdout.flush()
        else:
            sys.stdout.write(render_table(records))
        return 0

    return list_job


def render_table(records: list[AuditRecord]) -> str:
    """Return the records as a text table: time, event, principal, key, error."""
    rows = [_TABLE_COLUMNS] + [
        (
            format_event_time(record.event_time),
            record.event_name,
            record.principal_arn or record.username or "-",
            record.key_arn or "-",
            record.error_code or "-",
        )
        for record in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_TABLE_COLUMNS))]
    lines = (
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
    return "".join(line.rstrip() + "\n" for line in lines)


async def _verify(data_dir: pathlib.Path, signer: CheckpointSigner) -> int:
    async with open_audit_store(data_dir) as store:
        report = await verify_chain(store, signer)
        head = await _head_hash(store, report)
    if report.problem is not None:
        problem = report.problem
        sys.stdout.write(f"BROKEN: record {problem.seq} ({problem.kind}): {problem.detail}\n")
        return 1
    sys.stdout.write(
        f"ok: {report.records} records verified (chain head {head.hex()}); "
        f"{_checkpoint_summary(report)}\n"
    )
    return 0


def _checkpoint_summary(report: VerifyReport) -> str:
    """Say how much of the chain signed checkpoints cover (a rehashed tail is not caught)."""
    if report.last_checkpoint_seq is None:
        return "no signed checkpoint covers them yet"
    plural = "" if report.checkpoints == 1 else "s"
    summary = f"{report.checkpoints} signed checkpoint{plural}, the last at record "
    summary += str(report.last_checkpoint_seq)
    unsigned = (report.last_seq or 0) - report.last_checkpoint_seq
    if unsigned > 0:
        summary += f" ({unsigned} newer records not signed yet)"
    return summary


async def _head_hash(store: AuditStore, report: VerifyReport) -> bytes:
    """Return the hash of the last record the report checked (records may be added since)."""
    if report.last_seq is not None:
        record = await store.get(report.last_seq)
        if record is not None:
            return record.hash
    anchor = await store.anchor()
    return anchor.hash if anchor is not None else GENESIS_HASH


async def _export(
    data_dir: pathlib.Path, signer: CheckpointSigner, before: float, output: pathlib.Path
) -> int:
    async with open_audit_store(data_dir) as store:
        try:
            count, anchor = await export_and_prune(store, signer, before, output)
        except ChainBroken as broken:
            problem = broken.report.problem
            assert problem is not None
            sys.stdout.write(
                f"BROKEN: record {problem.seq} ({problem.kind}): {problem.detail}; "
                "nothing exported or pruned\n"
            )
            return 1
        except FileExistsError as error:
            raise UsageError(str(error)) from None
    cut = format_event_time(before)
    if count == 0:
        sys.stdout.write(f"nothing to export: no events before {cut}\n")
    else:
        assert anchor is not None
        sys.stdout.write(
            f"exported {count} records (events before {cut}) to {output}; "
            f"pruned them, the chain now starts after record {anchor.seq}\n"
        )
    return 0
