"""Session expiry on the service clock: an in-process server whose fake clock the test moves."""

from __future__ import annotations

import functools
import pathlib
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any
from xml.etree import ElementTree

import anyio
import pytest

from kms_actors.config import load_settings
from kms_actors.domain.clock import FakeClock
from kms_actors.http._sts import XMLNS
from kms_actors.service import open_service
from tests.http.conftest import RawReply, raw_request
from tests.roles.conftest import APP_ROLE, READER_ROLE, USERS, Client

FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
Credentials = dict[str, Any]


@pytest.fixture
async def served(
    tmp_path: pathlib.Path, roles_config: pathlib.Path
) -> AsyncIterator[tuple[str, FakeClock]]:
    """An in-process server of the role config on a fake clock: (endpoint, clock)."""
    clock = FakeClock(start=time.time())
    settings = load_settings(
        roles_config, env={}, overrides={"service.data_dir": str(tmp_path), "http.port": 0}
    )
    async with open_service(settings, clock=clock, http=True) as service:
        assert service.http_address is not None
        host, port = service.http_address
        yield f"http://{host}:{port}", clock


async def _signed(
    endpoint: str, clock: FakeClock, body: bytes, credentials: Credentials, **how: Any
) -> RawReply:
    """Send a request signed at the service's (fake) time with ``credentials``."""
    call = functools.partial(
        raw_request,
        endpoint,
        body,
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        session_token=credentials.get("SessionToken"),
        now=clock.now(),
        **how,
    )
    return await anyio.to_thread.run_sync(call)


async def _sts(endpoint: str, clock: FakeClock, credentials: Credentials, **form: str) -> RawReply:
    body = urllib.parse.urlencode({**form, "Version": "2011-06-15"}).encode()
    return await _signed(
        endpoint, clock, body, credentials, target=None, headers=FORM, service="sts"
    )


async def _kms_list_keys(endpoint: str, clock: FakeClock, credentials: Credentials) -> RawReply:
    return await _signed(endpoint, clock, b"{}", credentials, target="TrentService.ListKeys")


def _user(name: str) -> Credentials:
    return {"AccessKeyId": USERS[name][0], "SecretAccessKey": USERS[name][1]}


@pytest.mark.anyio
async def test_expired_session_credentials_are_refused(
    served: tuple[str, FakeClock], client: Client
) -> None:
    endpoint, clock = served
    sts = client("sts", "bob", endpoint=endpoint)
    answer = await anyio.to_thread.run_sync(
        functools.partial(
            sts.assume_role, RoleArn=READER_ROLE, RoleSessionName="brief", DurationSeconds=900
        )
    )
    credentials = answer["Credentials"]
    assert credentials["Expiration"].timestamp() == int(clock.now() + 900)
    assert (await _kms_list_keys(endpoint, clock, credentials)).status == 200

    clock.advance(899)
    assert (await _kms_list_keys(endpoint, clock, credentials)).status == 200

    clock.advance(2)
    reply = await _kms_list_keys(endpoint, clock, credentials)
    assert (reply.status, reply.json()) == (
        400,
        {
            "__type": "ExpiredTokenException",
            "message": "The security token included in the request is expired",
        },
    )
    reply = await _sts(endpoint, clock, credentials, Action="GetCallerIdentity")
    assert reply.status == 403
    assert b"<Code>ExpiredToken</Code>" in reply.body
    # An expired session may not assume a role either.
    reply = await _sts(
        endpoint, clock, credentials, Action="AssumeRole", RoleArn=APP_ROLE, RoleSessionName="x1"
    )
    assert b"<Code>ExpiredToken</Code>" in reply.body


@pytest.mark.anyio
async def test_expired_sessions_are_forgotten_after_an_hour(served: tuple[str, FakeClock]) -> None:
    endpoint, clock = served
    old = await _assume_role(endpoint, clock, "alice", "old", DurationSeconds="900")

    # Expired sessions are kept an hour (and answer ExpiredToken); the next AssumeRole after
    # that forgets them, and their keys are then unknown.
    clock.advance(900 + 3600 + 1)
    reply = await _sts(endpoint, clock, old, Action="GetCallerIdentity")
    assert b"<Code>ExpiredToken</Code>" in reply.body
    new = await _assume_role(endpoint, clock, "alice", "new")
    reply = await _kms_list_keys(endpoint, clock, old)
    assert reply.json() == {
        "__type": "UnrecognizedClientException",
        "message": "The security token included in the request is invalid.",
    }
    assert (await _sts(endpoint, clock, new, Action="GetCallerIdentity")).status == 200


async def _assume_role(
    endpoint: str, clock: FakeClock, user: str, session: str, **form: str
) -> Credentials:
    reply = await _sts(
        endpoint,
        clock,
        _user(user),
        Action="AssumeRole",
        RoleArn=APP_ROLE,
        RoleSessionName=session,
        **form,
    )
    assert reply.status == 200, reply.body
    return _credentials_of(reply.body)


def _credentials_of(body: bytes) -> Credentials:
    """Return the Credentials of an AssumeRole answer."""
    found = ElementTree.fromstring(body).find(f".//{{{XMLNS}}}Credentials")
    assert found is not None, body
    return {child.tag.split("}")[1]: child.text or "" for child in found}
