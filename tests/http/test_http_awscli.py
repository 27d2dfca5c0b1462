"""The AWS CLI (``aws kms ...``) against the real server, configured by environment only."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess
import sys

from tests.http.conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, clean_env


def _aws(endpoint: str, tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    config.touch()
    credentials.touch()
    env = clean_env()
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
    )
    return subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_encrypt_decrypt_round_trip_with_fileb(endpoint: str, tmp_path: pathlib.Path) -> None:
    key_id = _ok(
        _aws(
            endpoint,
            tmp_path,
            "kms",
            "create-key",
            "--description",
            "from the AWS CLI",
            "--query",
            "KeyMetadata.KeyId",
            "--output",
            "text",
        )
    )
    plaintext = os.urandom(100) + b"\x00\xff binary\n"
    (tmp_path / "in.bin").write_bytes(plaintext)
    encoded = _ok(
        _aws(
            endpoint,
            tmp_path,
            "kms",
            "encrypt",
            "--key-id",
            key_id,
            "--plaintext",
            "fileb://in.bin",
            "--encryption-context",
            "purpose=cli",
            "--query",
            "CiphertextBlob",
            "--output",
            "text",
        )
    )
    (tmp_path / "ct.bin").write_bytes(base64.b64decode(encoded, validate=True))
    decrypted = _ok(
        _aws(
            endpoint,
            tmp_path,
            "kms",
            "decrypt",
            "--ciphertext-blob",
            "fileb://ct.bin",
            "--encryption-context",
            "purpose=cli",
            "--query",
            "Plaintext",
            "--output",
            "text",
        )
    )
    assert base64.b64decode(decrypted) == plaintext


def test_cli_reports_aws_errors(endpoint: str, tmp_path: pathlib.Path) -> None:
    result = _aws(endpoint, tmp_path, "kms", "describe-key", "--key-id", "alias/not-there-cli")
    assert result.returncode != 0
    assert "NotFoundException" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_lists_keys_as_json(endpoint: str, tmp_path: pathlib.Path) -> None:
    created = json.loads(_ok(_aws(endpoint, tmp_path, "kms", "create-key", "--output", "json")))
    listed = json.loads(_ok(_aws(endpoint, tmp_path, "kms", "list-keys", "--output", "json")))
    assert created["KeyMetadata"]["KeyId"] in {key["KeyId"] for key in listed["Keys"]}
    identity = json.loads(_ok(_aws(endpoint, tmp_path, "sts", "get-caller-identity")))
    assert identity["Account"] == "111122223333"
