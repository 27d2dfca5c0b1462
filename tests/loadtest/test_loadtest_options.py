"""Argument checking: every mistake is one UsageError line, found before anything is sent."""

from __future__ import annotations

import pytest

from kms_actors.loadtest._options import UsageError, parse_context, parse_mix, parse_seconds
from tests.loadtest.conftest import Runner


def test_mix_accepts_any_spelling_and_sums_repeats() -> None:
    assert parse_mix("encrypt=70, Decrypt=20,re-encrypt=5,generate_data_key,encrypt=5") == {
        "Encrypt": 75,
        "Decrypt": 20,
        "ReEncrypt": 5,
        "GenerateDataKey": 1,
    }


def test_context_and_durations_parse() -> None:
    assert parse_context("tenant=a, app = b") == {"tenant": "a", "app": "b"}
    assert [parse_seconds(t, "x") for t in ("2", "1.5s", "250ms", "2m")] == [2, 1.5, 0.25, 120]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give --endpoint URL"),
        (["--embedded", "--endpoint", "http://x"], "not both"),
        (["--embedded", "--rate", "abc"], "--rate must be requests per second"),
        (
            ["--embedded", "--rate", "5", "--concurrency", "2"],
            "--concurrency (closed loop) or --rate",
        ),
        (["--embedded", "--mix", "encrypt=x"], "must be a whole number"),
        (["--embedded", "--mix", "frobnicate=1"], "unknown operation 'frobnicate'"),
        (["--embedded", "--payload-size", "5000"], "between 1 and 4096"),
        (["--embedded", "--workers", "2"], "--workers must be 1"),
        (["--embedded", "--duration", "soon"], "--duration must be a duration"),
        (["--endpoint", "ftp://x"], "must be an http:// or https:// URL"),
        (["--endpoint", "http://x", "--keys", "2", "--key-id", "k"], "--keys"),
        (["--endpoint", "http://x", "--workers", "4", "--concurrency", "2"], "less than --workers"),
    ],
)
def test_bad_arguments_are_one_line_and_status_2(
    loadtest: Runner, argv: list[str], message: str
) -> None:
    status, out, err = loadtest(*argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err, err


def test_usage_error_is_an_exception_with_the_line() -> None:
    with pytest.raises(UsageError, match="--context needs key=value"):
        parse_context("novalue")
