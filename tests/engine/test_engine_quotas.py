"""The customer managed key quota, and the settings behind it (file, env, CLI)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import anyio
import pytest

import kms_actors
from kms_actors import ConfigError, FakeClock, KmsError, load_settings
from tests.engine.engine_support import DAY, error_of, eventually, is_gone, new_key

SETTING_ENV = "KMS_ACTORS_KEYS_MAX_CUSTOMER_KEYS"


@pytest.mark.anyio
async def test_customer_key_quota(data_dir: pathlib.Path, clock: FakeClock) -> None:
    overrides = {"keys.max_customer_keys": 3}
    async with kms_actors.open_kms(data_dir, clock=clock, overrides=overrides) as kms:
        first = (await new_key(kms))["KeyId"]
        await new_key(kms)
        managed = (await kms.describe_key(KeyId="alias/aws/s3"))["KeyMetadata"]
        assert managed["KeyManager"] == "AWS"
        again = (await kms.describe_key(KeyId="alias/aws/s3"))["KeyMetadata"]
        assert again["KeyId"] == managed["KeyId"]
        # The AWS managed key did not use up the third slot.
        await new_key(kms)
        error = await error_of(kms.create_key(Description="fourth"))
        assert error.code == "LimitExceededException"
        # AWS managed keys are created at the limit too, and do not count.
        ebs = (await kms.describe_key(KeyId="alias/aws/ebs"))["KeyMetadata"]
        assert ebs["KeyManager"] == "AWS"
        assert ebs["KeyId"] != managed["KeyId"]
        # Another account has its own quota.
        other = kms.as_caller(account_id="444455556666")
        await new_key(other)

        # A key pending deletion still counts.
        await kms.schedule_key_deletion(KeyId=first, PendingWindowInDays=7)
        error = await error_of(kms.create_key())
        assert error.code == "LimitExceededException"
        clock.advance(7 * DAY)
        await eventually(lambda: is_gone(kms, first))
        await new_key(kms)
        error = await error_of(kms.create_key())
        assert error.code == "LimitExceededException"
        listed = (await kms.list_keys())["Keys"]
        assert len(listed) == 5  # three customer keys, two AWS managed keys

    # The count is the same after a restart (it comes from the store).
    async with kms_actors.open_kms(data_dir, clock=clock, overrides=overrides) as kms:
        error = await error_of(kms.create_key())
        assert error.code == "LimitExceededException"
        assert (await kms.describe_key(KeyId="alias/aws/s3"))["KeyMetadata"]["KeyId"] == managed[
            "KeyId"
        ]


@pytest.mark.anyio
async def test_a_quota_lowered_below_the_count_refuses_new_keys(
    data_dir: pathlib.Path, clock: FakeClock
) -> None:
    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        for _ in range(3):
            await new_key(kms)
    overrides = {"keys.max_customer_keys": 2}
    async with kms_actors.open_kms(data_dir, clock=clock, overrides=overrides) as kms:
        assert (await error_of(kms.create_key())).code == "LimitExceededException"


def test_default_quota_is_1000() -> None:
    assert load_settings().keys.max_customer_keys == 1000
    assert load_settings(env={}).keys.max_customer_keys == 1000


def test_quota_from_the_environment() -> None:
    assert load_settings(env={SETTING_ENV: "2"}).keys.max_customer_keys == 2


@pytest.mark.anyio
async def test_quota_from_the_environment_applies(
    data_dir: pathlib.Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SETTING_ENV, "2")
    async with kms_actors.open_kms(data_dir, clock=clock) as kms:
        await new_key(kms)
        await new_key(kms)
        assert (await error_of(kms.create_key())).code == "LimitExceededException"


@pytest.mark.parametrize("value", ["many", "", "1.5", "0", "-3"])
def test_bad_quota_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={SETTING_ENV: value})
    message = str(info.value)
    assert "keys.max_customer_keys" in message
    assert "\n" not in message


def test_bad_quota_stops_the_cli_with_one_line(tmp_path: pathlib.Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_ACTORS_")}
    env[SETTING_ENV] = "many"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kms_actors",
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            "0",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "keys.max_customer_keys" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # refused before touching anything


@pytest.mark.anyio
async def test_concurrent_creates_respect_the_quota(
    data_dir: pathlib.Path, clock: FakeClock
) -> None:
    overrides = {"keys.max_customer_keys": 3}
    async with kms_actors.open_kms(data_dir, clock=clock, overrides=overrides) as kms:
        outcomes: list[str] = []

        async def create() -> None:
            try:
                await kms.create_key()
            except KmsError as error:
                outcomes.append(error.code)
            else:
                outcomes.append("created")

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(create)
        assert sorted(outcomes) == ["LimitExceededException"] * 7 + ["created"] * 3
        assert len((await kms.list_keys())["Keys"]) == 3
