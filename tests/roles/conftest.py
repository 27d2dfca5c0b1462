"""Fixtures for the role tests: a real server whose config declares roles and narrow users.

The config is ``config/kms.toml`` (its administrator ``dev``) plus users with narrow identity
policies and three roles: ``app`` (trusts ``alice`` directly and the account, and denies
``mallory``), ``team/reader`` (a role with a path, trusting the account and ``app``'s
sessions, with a read-only policy) and ``cross`` (trusting another account).
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.http.conftest import ROOT, ServerProcess, start_server

REGION = "us-east-1"
ACCOUNT_ID = "111122223333"
OTHER_ACCOUNT_ID = "444455556666"
DEV = ("AKIAEXAMPLEDEV000001", "kms-actors-development-secret-key-0001")
DEV_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/dev"

APP_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/app"
READER_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/team/reader"
CROSS_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/cross"
UNKNOWN_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/nobody"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(action: str, resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def _principal(kind: str, *arns: str) -> dict[str, Any]:
    return {
        "Effect": kind,
        "Principal": {"AWS": list(arns)},
        "Action": "sts:AssumeRole",
    }


# name -> (access key id, secret, account, ARN, identity policies)
USERS: dict[str, tuple[str, str, str, str, list[str]]] = {
    # Trusted by "app" by name; may otherwise only list keys.
    "alice": (
        "AKIAEXAMPLEALICE0001",
        "alice-secret-0001",
        ACCOUNT_ID,
        f"arn:aws:iam::{ACCOUNT_ID}:user/alice",
        [_policy(_allow("kms:ListKeys"))],
    ),
    # Its identity policy lets it assume team/reader (which trusts the account) and no other.
    "bob": (
        "AKIAEXAMPLEBOB000001",
        "bob-secret-0001",
        ACCOUNT_ID,
        f"arn:aws:iam::{ACCOUNT_ID}:user/bob",
        [_policy(_allow("sts:AssumeRole", READER_ROLE))],
    ),
    # May assume anything by its identity policy, but app's trust policy denies it by name.
    "mallory": (
        "AKIAEXAMPLEMALLORY01",
        "mallory-secret-0001",
        ACCOUNT_ID,
        f"arn:aws:iam::{ACCOUNT_ID}:user/mallory",
        [_policy(_allow("sts:AssumeRole"))],
    ),
    # No identity policy at all: trusted by nobody by name.
    "nobody": (
        "AKIAEXAMPLENOBODY001",
        "nobody-secret-0001",
        ACCOUNT_ID,
        f"arn:aws:iam::{ACCOUNT_ID}:user/nobody",
        [],
    ),
    # The account root: never allowed to assume a role.
    "root": (
        "AKIAEXAMPLEROOT00001",
        "root-secret-0001",
        ACCOUNT_ID,
        f"arn:aws:iam::{ACCOUNT_ID}:root",
        [],
    ),
    # Another account: "cross" trusts its account, and its policy allows the assumption.
    "carol": (
        "AKIAEXAMPLECAROL0001",
        "carol-secret-0001",
        OTHER_ACCOUNT_ID,
        f"arn:aws:iam::{OTHER_ACCOUNT_ID}:user/carol",
        [_policy(_allow("sts:AssumeRole"))],
    ),
    # Another account, no identity policy: "cross" trusting its account is not enough.
    "dave": (
        "AKIAEXAMPLEDAVE00001",
        "dave-secret-0001",
        OTHER_ACCOUNT_ID,
        f"arn:aws:iam::{OTHER_ACCOUNT_ID}:user/dave",
        [],
    ),
}

ROLES: list[dict[str, Any]] = [
    {
        "arn": APP_ROLE,
        "trust_policy": _policy(
            _principal("Allow", USERS["alice"][3], f"arn:aws:iam::{ACCOUNT_ID}:root"),
            _principal("Deny", USERS["mallory"][3]),
        ),
        "max_session_duration_seconds": 3600,
    },
    {
        "arn": READER_ROLE,
        "trust_policy": _policy(_principal("Allow", ACCOUNT_ID, APP_ROLE)),
        "policies": [_policy(_allow("kms:DescribeKey"), _allow("kms:ListKeys"))],
        "max_session_duration_seconds": 7200,
    },
    {
        "arn": CROSS_ROLE,
        "trust_policy": _policy(_principal("Allow", OTHER_ACCOUNT_ID)),
        "policies": [_policy(_allow("kms:ListKeys"))],
    },
]


def _toml(value: Any) -> str:
    # JSON strings and lists of strings are valid TOML values.
    return json.dumps(value)


def config_text() -> str:
    """Return the test configuration: config/kms.toml plus the users and roles above."""
    parts = [(ROOT / "config" / "kms.toml").read_text()]
    for key, secret, account, arn, policies in USERS.values():
        parts.append(
            "\n[[identities]]\n"
            f"access_key_id = {_toml(key)}\nsecret_access_key = {_toml(secret)}\n"
            f"account_id = {_toml(account)}\narn = {_toml(arn)}\npolicies = {_toml(policies)}\n"
        )
    for role in ROLES:
        parts.append("\n[[roles]]\n")
        parts.extend(f"{name} = {_toml(value)}\n" for name, value in role.items())
    return "".join(parts)


@pytest.fixture(scope="package")
def roles_config(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The test configuration file."""
    path = tmp_path_factory.mktemp("roles-config") / "kms-roles.toml"
    path.write_text(config_text())
    return path


@pytest.fixture(scope="package")
def roles_server(
    tmp_path_factory: pytest.TempPathFactory, roles_config: pathlib.Path
) -> Iterator[ServerProcess]:
    """One real server for the package, on a free loopback port."""
    running = start_server(tmp_path_factory.mktemp("roles-server") / "data", roles_config)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package", autouse=True)
def _aws_environment() -> Iterator[None]:
    """Keep the shell's AWS settings (profiles, endpoints, credentials) out of every client."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("AWS_", "KMS_ACTORS_")):
                patch.delenv(name)
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


# No retries; no client-side parameter checks, so the server's own checks are what is tested.
CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"}, parameter_validation=False
)

Client = Callable[..., Any]


@pytest.fixture(scope="package")
def boto_session(_aws_environment: None) -> Any:
    """One boto3 session (its loaded service models are shared by every client)."""
    return boto3.session.Session()


@pytest.fixture
def client(boto_session: Any, roles_server: ServerProcess) -> Client:
    """Return ``client(service, user="dev" | name in USERS | credentials dict)``."""

    def make(service: str, user: str | dict[str, Any] = "dev", endpoint: str = "") -> Any:
        if isinstance(user, dict):  # AssumeRole's Credentials
            key, secret, token = user["AccessKeyId"], user["SecretAccessKey"], user["SessionToken"]
        elif user == "dev":
            (key, secret), token = DEV, None
        else:
            key, secret, token = USERS[user][0], USERS[user][1], None
        return boto_session.client(
            service,
            endpoint_url=endpoint or roles_server.endpoint,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=CLIENT_CONFIG,
        )

    return make


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio (boto3 runs in worker threads)."""
    return "asyncio"
