"""The harness against the real server, run briefly: load models, workers, reports, clean-up."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
from typing import Any

import boto3
import pytest

from kms_actors.loadtest import Histogram, load_report
from kms_actors.loadtest._histogram import HistogramData
from tests.loadtest.conftest import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    Runner,
    clean_env,
    free_port,
    run_subprocess,
)

FAST = ("--warmup", "0.2")


def kms(endpoint: str) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def assert_scheduled_for_deletion(endpoint: str, key_ids: list[str]) -> None:
    client = kms(endpoint)
    listed = {k["KeyId"] for p in client.get_paginator("list_keys").paginate() for k in p["Keys"]}
    assert set(key_ids) <= listed
    for key_id in key_ids:
        assert client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_closed_loop_writes_json_and_html_reports(
    server: str, loadtest: Runner, tmp_path: pathlib.Path
) -> None:
    json_path, report_dir = tmp_path / "a.json", tmp_path / "report"
    status, out, err = loadtest(
        "--endpoint", server, "--concurrency", "4", "--duration", "1", *FAST,
        "--json", str(json_path), "--report", str(report_dir),
    )  # fmt: skip
    assert status == 0, err
    assert "p99.9" in out and "throughput" in out and "closed loop, concurrency 4" in out
    document = json.loads(json_path.read_text())
    latency = document["total"]["latency_ms"]
    assert set(latency) >= {"p50", "p90", "p99", "p99.9", "max"}
    assert latency["p50"] <= latency["p99"] <= latency["p99.9"] <= latency["max"]
    assert document["total"]["ok"] > 0 and document["total"]["errors"] == {}
    assert {"kms_actors", "python", "aiohttp"} <= set(document["versions"])
    assert document["command"]
    histogram = Histogram.from_data(load_report(str(json_path)).total.histogram)
    assert histogram.count == document["total"]["ok"]
    assert document["timeline"] and document["generator"]["cpu_percent"]
    page = (report_dir / "index.html").read_text()
    assert page.count("<svg") == 3 and "Latency by percentile" in page
    assert json.loads((report_dir / "report.json").read_text())["total"]["requests"] > 0
    assert_scheduled_for_deletion(server, document["keys_created"])


def test_open_loop_sends_exactly_the_requests_asked(
    server: str, loadtest: Runner, tmp_path: pathlib.Path
) -> None:
    json_path = tmp_path / "open.json"
    status, out, err = loadtest(
        "--endpoint", server, "--rate", "200", "--requests", "150", *FAST, "--json", str(json_path),
    )  # fmt: skip
    assert status == 0, err
    report = load_report(str(json_path))
    assert report.model == "open"
    assert report.total.requests == 150 and report.total.ok == 150
    assert report.generator.send_lag_ms is not None and report.generator.late_percent is not None
    assert "open loop, 200 req/s offered" in out and "send lag" in out


def test_mix_over_three_keys_with_context_cleans_up(
    server: str, loadtest: Runner, tmp_path: pathlib.Path
) -> None:
    json_path = tmp_path / "mix.json"
    status, out, err = loadtest(
        "--endpoint", server, "--mix",
        "encrypt=40,decrypt=20,re-encrypt=10,generate-data-key=10,"
        "generate-data-key-without-plaintext=10,generate-random=5,describe-key=5",
        "--keys", "3", "--context", "tenant=a,app=loadtest", "--payload-size", "1024",
        "--requests", "600", "--concurrency", "8", *FAST, "--json", str(json_path),
    )  # fmt: skip
    assert status == 0, err
    assert "GenerateDataKeyWithoutPlaintext" in out and "context 2 pair(s)" in out
    report = load_report(str(json_path))
    assert report.total.requests == report.total.ok == 600
    assert set(report.operations) == {
        "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext", "GenerateRandom", "DescribeKey",
    }  # fmt: skip
    assert sum(o.requests for o in report.operations.values()) == 600
    assert len(report.keys_created) == 3 and report.keys_scheduled_for_deletion == 3
    assert_scheduled_for_deletion(server, report.keys_created)


def test_two_worker_processes_share_the_load(
    server: str, loadtest: Runner, tmp_path: pathlib.Path
) -> None:
    json_path = tmp_path / "workers.json"
    status, _, err = loadtest(
        "--endpoint", server, "--workers", "2", "--concurrency", "4", "--requests", "400",
        *FAST, "--json", str(json_path),
    )  # fmt: skip
    assert status == 0, err
    report = load_report(str(json_path))
    assert report.total.requests == report.total.ok == 400
    assert len(report.generator.cpu_percent) == 2
    assert sum(p.requests for p in report.timeline) == 400
    assert_scheduled_for_deletion(server, report.keys_created)


def test_existing_key_is_used_and_left_alone(server: str, loadtest: Runner) -> None:
    key_id = kms(server).create_key()["KeyMetadata"]["KeyId"]
    status, out, err = loadtest(
        "--endpoint", server, "--key-id", key_id, "--op", "decrypt", "--requests", "100", *FAST
    )
    assert status == 0, err
    assert "ok 100" in out and "clean-up" not in out
    assert kms(server).describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_embedded_service_in_process(loadtest: Runner, tmp_path: pathlib.Path) -> None:
    json_path = tmp_path / "embedded.json"
    status, out, err = loadtest(
        "--embedded", "--mix", "encrypt=1,decrypt=1", "--keys", "2", "--requests", "500",
        *FAST, "--json", str(json_path),
    )  # fmt: skip
    assert status == 0, err
    report = load_report(str(json_path))
    assert report.target == "embedded" and report.total.ok == 500
    assert "embedded" in out


def test_compare_prints_both_with_ratios(
    server: str, loadtest: Runner, tmp_path: pathlib.Path
) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path, concurrency in ((a, "1"), (b, "4")):
        status, _, err = loadtest(
            "--endpoint", server, "--concurrency", concurrency, "--requests", "200", *FAST,
            "--json", str(path),
        )  # fmt: skip
        assert status == 0, err
    status, out, err = loadtest("compare", str(a), str(b))
    assert status == 0, err
    lines = out.splitlines()
    header = next(line for line in lines if "B/A" in line)
    assert header.split() == ["A", "B", "B/A"]
    requests = next(line for line in lines if line.startswith("requests"))
    assert requests.split() == ["requests", "200", "200", "1.000"]
    for label in ("throughput req/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"):
        assert any(line.startswith(label) for line in lines), label


def test_compare_refuses_a_file_that_is_not_a_report(
    loadtest: Runner, tmp_path: pathlib.Path
) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    status, out, err = loadtest("compare", str(other), str(other))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "is not a loadtest --json report" in err


def test_histograms_in_reports_merge(server: str, loadtest: Runner, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ops.json"
    status, _, err = loadtest(
        "--endpoint", server, "--mix", "encrypt,describe-key", "--requests", "200", *FAST,
        "--json", str(path),
    )  # fmt: skip
    assert status == 0, err
    report = load_report(str(path))
    merged = Histogram()
    for outcome in report.operations.values():
        merged.merge(Histogram.from_data(outcome.histogram))
    assert merged.to_data() == report.total.histogram
    assert isinstance(report.total.histogram, HistogramData)


@pytest.mark.parametrize(
    ("endpoint", "env", "argv", "message"),
    [
        ("closed", {}, [], "cannot reach http://127.0.0.1:"),
        ("server", {"AWS_SECRET_ACCESS_KEY": "wrong"}, [], "rejected the credentials"),
        ("server", {"AWS_ACCESS_KEY_ID": "AKIAUNKNOWN000000000"}, [], "rejected the credentials"),
        (
            "server",
            {},
            ["--key-id", "11111111-2222-3333-4444-555555555555"],
            "key 11111111-2222-3333-4444-555555555555 cannot be used",
        ),
    ],
    ids=["unreachable", "bad-secret", "unknown-access-key", "unknown-key"],
)
def test_bad_usage_fails_fast_with_one_line(
    server: str, endpoint: str, env: dict[str, str], argv: list[str], message: str
) -> None:
    url = server if endpoint == "server" else f"http://127.0.0.1:{free_port()}"
    result = run_subprocess(
        "--endpoint", url, "--duration", "5", *argv, env={**clean_env(), **env}
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("kms-actors loadtest: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_ends_the_run_early_reports_and_cleans_up(
    server: str, tmp_path: pathlib.Path
) -> None:
    json_path = tmp_path / "interrupted.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "kms_actors.loadtest", "--endpoint", server, "--keys", "2",
         "--duration", "60", "--warmup", "0", "--progress", "--json", str(json_path)],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        assert process.stderr.readline().startswith("running")  # set-up done, measuring
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "(interrupted)" in out and "Traceback" not in err
    report = load_report(str(json_path))
    assert report.interrupted and len(report.keys_created) == 2
    assert_scheduled_for_deletion(server, report.keys_created)
