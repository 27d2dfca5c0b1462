"""``kms-actors audit verify | list | export`` on a data directory the service wrote.

One module-wide data directory holds nine events a minute apart (a fake clock); tests that
tamper with it or prune it work on a copy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import shutil
import sqlite3
from dataclasses import dataclass, field

import pytest

import kms_actors
from kms_actors import FakeClock
from kms_actors.audit import format_event_time
from tests.audit_e2e.audit_e2e_support import (
    CliResult,
    SyncKms,
    audit_cli,
    audit_cli_subprocess,
    audit_db,
    embedded,
    events,
)

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z
STEP = 60.0
NOBODY = "arn:aws:iam::111122223333:user/nobody"
ROOT_ARN = "arn:aws:iam::111122223333:root"
EVENT_NAMES = [
    "CreateKey",
    "CreateKey",
    "CreateAlias",
    "Encrypt",
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "DescribeKey",
    "ListKeys",
]


@dataclass
class Prepared:
    """A data directory with the nine events of EVENT_NAMES, one a minute from START."""

    data_dir: pathlib.Path
    key_arn: str = ""
    key_id: str = ""
    other_arn: str = ""
    request_ids: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """Run the service once with a fake clock and close it (a final checkpoint is signed)."""
    found = Prepared(tmp_path_factory.mktemp("cli") / "data")
    clock = FakeClock(START)
    with embedded(found.data_dir, clock=clock) as kms:

        def step() -> None:
            kms.portal.call(clock.advance, STEP)

        key = kms.create_key(Description="cli")["KeyMetadata"]
        found.key_arn, found.key_id = key["Arn"], key["KeyId"]
        step()
        found.other_arn = kms.create_key()["KeyMetadata"]["Arn"]
        step()
        kms.create_alias(AliasName="alias/cli-app", TargetKeyId=found.key_id)
        step()
        blob = kms.encrypt(KeyId="alias/cli-app", Plaintext=b"x")["CiphertextBlob"]
        step()
        nobody = SyncKms(kms.portal, kms.kms.as_caller(arn=NOBODY))
        with pytest.raises(kms_actors.KmsError):
            nobody.encrypt(KeyId=found.key_id, Plaintext=b"x")
        step()
        kms.decrypt(CiphertextBlob=blob)
        step()
        kms.generate_data_key(KeyId=found.other_arn, KeySpec="AES_256")
        step()
        with pytest.raises(kms_actors.KmsError):
            kms.describe_key(KeyId="alias/missing")
        step()
        kms.list_keys()
    assert [e["eventName"] for e in events(found.data_dir)] == EVENT_NAMES
    return found


@pytest.fixture
def data_dir(prepared: Prepared, tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the prepared data directory, to tamper with or prune."""
    copy = tmp_path / "data"
    shutil.copytree(prepared.data_dir, copy)
    return copy


def _verify(data_dir: pathlib.Path) -> CliResult:
    return audit_cli("verify", "--data-dir", str(data_dir))


def _list(data_dir: pathlib.Path, *options: str) -> CliResult:
    return audit_cli("list", "--data-dir", str(data_dir), *options)


def _jsonl(result: CliResult) -> list[dict[str, object]]:
    assert result.code == 0, result.err
    assert result.err == ""
    return [json.loads(line) for line in result.out.splitlines()]


def _one_line_usage_error(result: CliResult) -> None:
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1 and result.err.startswith("kms-actors audit"), result.err


# --- verify --------------------------------------------------------------------------------


def test_verify_reports_the_records_and_the_chain_head(prepared: Prepared) -> None:
    result = _verify(prepared.data_dir)
    assert result.code == 0, result.err
    with audit_db(prepared.data_dir) as conn:
        head = bytes(conn.execute("SELECT hash FROM audit_records WHERE seq = 9").fetchone()[0])
    assert result.out.startswith(f"ok: 9 records verified (chain head {head.hex()})")
    assert result.out.count("\n") == 1


def _edit(conn: sqlite3.Connection) -> None:
    (event,) = conn.execute("SELECT event_json FROM audit_records WHERE seq = 4").fetchone()
    edited = bytes(event).replace(b'"kms_actors-embedded"', b'"someone-else"')
    assert edited != bytes(event)
    conn.execute("UPDATE audit_records SET event_json = ? WHERE seq = 4", (edited,))


def _edit_as_text(conn: sqlite3.Connection) -> None:
    conn.execute(
        "UPDATE audit_records SET event_json = replace(event_json, 'root', 'toor') WHERE seq = 4"
    )


def _edit_column(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE audit_records SET principal_arn = 'arn:aws:iam::1:user/x' WHERE seq = 4")


def _delete(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM audit_records WHERE seq = 4")


def _delete_and_renumber(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM audit_records WHERE seq = 4")
    conn.execute("UPDATE audit_records SET seq = seq - 1 WHERE seq > 4")


def _swap(conn: sqlite3.Connection) -> None:
    """Swap records 4 and 6, each row whole (its hashes too) but for its seq."""
    conn.execute("UPDATE audit_records SET seq = -4 WHERE seq = 4")
    conn.execute("UPDATE audit_records SET seq = 4 WHERE seq = 6")
    conn.execute("UPDATE audit_records SET seq = 6 WHERE seq = -4")


def _delete_the_tail(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM audit_records WHERE seq = 9")


def _rewrite_and_rehash(conn: sqlite3.Connection) -> None:
    """Edit record 4 and recompute every hash after it: only the signed checkpoint knows."""
    _edit(conn)
    rows = conn.execute(
        "SELECT seq, event_json FROM audit_records WHERE seq >= 4 ORDER BY seq"
    ).fetchall()
    (prev,) = conn.execute("SELECT hash FROM audit_records WHERE seq = 3").fetchone()
    prev = bytes(prev)
    for seq, event in rows:
        new = hashlib.sha256(prev + bytes(event)).digest()
        conn.execute(
            "UPDATE audit_records SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, new, seq)
        )
        prev = new


@pytest.mark.parametrize(
    ("tamper", "seq", "kind"),
    [
        (_edit, 4, "edited"),
        (_edit_as_text, 4, "edited"),
        (_edit_column, 4, "columns"),
        (_delete, 4, "missing"),
        (_delete_and_renumber, 4, "reordered"),
        (_swap, 4, "reordered"),
        (_delete_the_tail, 9, "missing"),
        (_rewrite_and_rehash, 0, "checkpoint"),  # at the first checkpoint after record 4
    ],
    ids=lambda value: getattr(value, "__name__", str(value)).strip("_"),
)
def test_verify_reports_the_first_tampered_record(
    data_dir: pathlib.Path, tamper: object, seq: int, kind: str
) -> None:
    with audit_db(data_dir) as conn:
        tamper(conn)  # type: ignore[operator]
        if not seq:
            (seq,) = conn.execute(
                "SELECT min(seq) FROM audit_checkpoints WHERE seq >= 4"
            ).fetchone()
    result = _verify(data_dir)
    assert result.code == 1, result.out + result.err
    assert result.out.startswith(f"BROKEN: record {seq} ({kind}): "), result.out
    assert result.out.count("\n") == 1
    assert "Traceback" not in result.err


def test_verify_with_another_root_key_reports_forged_checkpoints(
    data_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KMS_ACTORS_ROOT_KEY", base64.b64encode(os.urandom(32)).decode())
    result = _verify(data_dir)
    assert result.code == 1
    assert "(checkpoint)" in result.out and "invalid signature" in result.out


def test_verify_never_creates_a_log_or_a_root_key(tmp_path: pathlib.Path) -> None:
    _one_line_usage_error(_verify(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_verify_without_the_root_key_is_a_usage_error(data_dir: pathlib.Path) -> None:
    (data_dir / "root.key").unlink()
    result = _verify(data_dir)
    _one_line_usage_error(result)
    assert "root key" in result.err
    assert not (data_dir / "root.key").exists()


def test_the_installed_command_runs_audit_verify(prepared: Prepared) -> None:
    result = audit_cli_subprocess("verify", "--data-dir", str(prepared.data_dir))
    assert result.code == 0, result.out + result.err
    assert result.out.startswith("ok: 9 records verified")


# --- list ----------------------------------------------------------------------------------


def test_list_prints_a_table_newest_first(prepared: Prepared) -> None:
    result = _list(prepared.data_dir)
    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert header.split() == ["TIME", "EVENT", "PRINCIPAL", "KEY", "ERROR"]
    assert [row.split()[1] for row in rows] == EVENT_NAMES[::-1]
    denied = rows[4].split()
    assert denied == [
        format_event_time(START + 4 * STEP),
        "Encrypt",
        NOBODY,
        prepared.key_arn,
        "AccessDeniedException",
    ]
    assert rows[0].split() == [format_event_time(START + 8 * STEP), "ListKeys", ROOT_ARN, "-", "-"]


def test_list_jsonl_gives_the_stored_cloudtrail_records(prepared: Prepared) -> None:
    listed = _jsonl(_list(prepared.data_dir, "--format", "jsonl"))
    assert listed == events(prepared.data_dir)[::-1]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--event", "Encrypt"), [5, 4]),
        (("--principal", NOBODY), [5]),
        (("--key", "KEY_ID"), [6, 5, 4, 3, 1]),
        (("--key", "KEY_ARN"), [6, 5, 4, 3, 1]),
        (("--key", "alias/cli-app"), [3]),
        (("--key", "OTHER_ARN", "--event", "GenerateDataKey"), [7]),
        (("--since", format_event_time(START + 6 * STEP)), [9, 8, 7]),
        (("--until", str(int(START + STEP))), [2, 1]),
        (("--since", "2027-01-15T08:02:00+00:00", "--until", "2027-01-15 08:03"), [4, 3]),
        (("--account", "111122223333", "--region", "us-east-1", "--limit", "2"), [9, 8]),
        (("--account", "444455556666"), []),
        (("--region", "eu-west-1"), []),
        (("--limit", "0"), [9, 8, 7, 6, 5, 4, 3, 2, 1]),
    ],
    ids=lambda value: "_".join(value).lstrip("-") if isinstance(value, tuple) else "",
)
def test_list_filters_combine(
    prepared: Prepared, options: tuple[str, ...], expected: list[int]
) -> None:
    names = {
        "KEY_ID": prepared.key_id,
        "KEY_ARN": prepared.key_arn,
        "OTHER_ARN": prepared.other_arn,
    }
    argv = [names.get(option, option) for option in options]
    listed = _jsonl(_list(prepared.data_dir, "--format", "jsonl", *argv))
    stored = events(prepared.data_dir)
    assert [e["eventID"] for e in listed] == [stored[seq - 1]["eventID"] for seq in expected]


@pytest.mark.parametrize(
    "options",
    [
        ("--since", "yesterday"),
        ("--until", "nan"),
        ("--since", "2027-01-02", "--until", "2027-01-01"),
        ("--limit", "-1"),
        ("--limit", "ten"),
        ("--format", "xml"),
        ("--bogus",),
    ],
)
def test_list_usage_errors_are_one_line(prepared: Prepared, options: tuple[str, ...]) -> None:
    _one_line_usage_error(_list(prepared.data_dir, *options))


def test_a_missing_command_is_a_usage_error() -> None:
    _one_line_usage_error(audit_cli())


def test_a_bad_config_file_is_a_usage_error(prepared: Prepared, tmp_path: pathlib.Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[audit]\ndurable = 'sometimes'\n")
    result = audit_cli("list", "--config", str(config), "--data-dir", str(prepared.data_dir))
    _one_line_usage_error(result)
    assert "audit.durable" in result.err


# --- export --------------------------------------------------------------------------------


def test_export_writes_old_events_and_prunes_them(
    data_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    stored = events(data_dir)
    output = tmp_path / "old.jsonl"
    cut = format_event_time(START + 5 * STEP)
    result = audit_cli(
        "export", "--data-dir", str(data_dir), "--before", cut, "--output", str(output)
    )
    assert result.code == 0, result.err
    assert result.out.startswith(f"exported 5 records (events before {cut}) to {output}")
    lines = output.read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == stored[:5]
    # The export chains up to the signed anchor the rest of the log starts from.
    chained = bytes(32)
    for line in lines:
        chained = hashlib.sha256(chained + line).digest()
    with audit_db(data_dir) as conn:
        anchor = conn.execute("SELECT seq, hash FROM audit_anchor").fetchone()
    assert (anchor[0], bytes(anchor[1])) == (5, chained)
    assert _jsonl(_list(data_dir, "--format", "jsonl")) == stored[5:][::-1]
    verified = _verify(data_dir)
    assert verified.code == 0 and verified.out.startswith("ok: 4 records verified"), verified.out
    again = audit_cli(
        "export",
        "--data-dir",
        str(data_dir),
        "--before",
        cut,
        "--output",
        str(tmp_path / "again.jsonl"),
    )
    assert again.code == 0 and again.out.startswith("nothing to export"), again.out
    assert not (tmp_path / "again.jsonl").exists()


def test_export_never_replaces_a_file(data_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    output = tmp_path / "exists.jsonl"
    output.write_text("keep me\n")
    result = audit_cli(
        "export", "--data-dir", str(data_dir), "--before", str(START + 600), "--output", str(output)
    )
    _one_line_usage_error(result)
    assert output.read_text() == "keep me\n"
    assert len(events(data_dir)) == 9


def test_export_refuses_a_broken_chain(data_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    with audit_db(data_dir) as conn:
        _delete(conn)
    output = tmp_path / "out.jsonl"
    result = audit_cli(
        "export", "--data-dir", str(data_dir), "--before", str(START + 600), "--output", str(output)
    )
    assert result.code == 1
    assert result.out.startswith("BROKEN: record 4 (missing)")
    assert not output.exists()
    assert len(events(data_dir)) == 8


@pytest.mark.parametrize(
    "options",
    [
        ("--output", "OUT"),
        ("--before", "2027-01-01"),
        ("--before", "soon", "--output", "OUT"),
        ("--before", "2027-01-01", "--output", "/nonexistent-dir/out.jsonl"),
    ],
)
def test_export_usage_errors_are_one_line(
    data_dir: pathlib.Path, tmp_path: pathlib.Path, options: tuple[str, ...]
) -> None:
    argv = [str(tmp_path / "out.jsonl") if option == "OUT" else option for option in options]
    _one_line_usage_error(audit_cli("export", "--data-dir", str(data_dir), *argv))
    assert len(events(data_dir)) == 9
