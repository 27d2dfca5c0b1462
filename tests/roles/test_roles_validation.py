"""AssumeRole's parameter checks: STS's ValidationError wording, after authentication."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.http.conftest import RawReply, ServerProcess, raw_request
from tests.roles.conftest import APP_ROLE, USERS, Client

FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
NULL = "Value null at '{}' failed to satisfy constraint: Member must not be null"


def _validation_message(client: Client, **params: Any) -> str:
    params = {"RoleArn": APP_ROLE, "RoleSessionName": "ok", **params}
    with pytest.raises(ClientError) as caught:
        client("sts", "alice").assume_role(**params)
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (response["Error"]["Type"], response["Error"]["Code"]) == ("Sender", "ValidationError")
    message: str = response["Error"]["Message"]
    return message


def _raw(server: ServerProcess, body: bytes, user: str = "alice") -> RawReply:
    key, secret = USERS[user][:2]
    return raw_request(
        server.endpoint,
        body,
        target=None,
        headers=FORM,
        access_key_id=key,
        secret_access_key=secret,
        service="sts",
    )


def _constraint(value: str, member: str, rule: str) -> str:
    return f"Value '{value}' at '{member}' failed to satisfy constraint: Member must {rule}"


NAME_PATTERN = r"satisfy regular expression pattern: [\w+=,.@-]*"


@pytest.mark.parametrize(
    ("name", "problems"),
    [
        ("a", [_constraint("a", "roleSessionName", "have length greater than or equal to 2")]),
        ("has space", [_constraint("has space", "roleSessionName", NAME_PATTERN)]),
        ("ci/cd", [_constraint("ci/cd", "roleSessionName", NAME_PATTERN)]),
        ("sessão", [_constraint("sessão", "roleSessionName", NAME_PATTERN)]),
        (
            "x" * 65,
            [_constraint("x" * 65, "roleSessionName", "have length less than or equal to 64")],
        ),
        (
            "é",
            [
                _constraint("é", "roleSessionName", "have length greater than or equal to 2"),
                _constraint("é", "roleSessionName", NAME_PATTERN),
            ],
        ),
        ("", [_constraint("", "roleSessionName", "have length greater than or equal to 2")]),
    ],
)
def test_bad_role_session_name(client: Client, name: str, problems: list[str]) -> None:
    count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
    assert _validation_message(client, RoleSessionName=name) == count + "; ".join(problems)


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (
            899,
            "1 validation error detected: "
            + _constraint("899", "durationSeconds", "have value greater than or equal to 900"),
        ),
        (
            43201,
            "1 validation error detected: "
            + _constraint("43201", "durationSeconds", "have value less than or equal to 43200"),
        ),
        # Within STS's range, beyond the role's (app allows one hour).
        (3601, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."),
    ],
)
def test_bad_duration(client: Client, seconds: int, message: str) -> None:
    assert _validation_message(client, DurationSeconds=seconds) == message


def test_shortest_and_longest_durations_are_taken(client: Client) -> None:
    sts = client("sts", "alice")
    for seconds in (900, 3600):
        sts.assume_role(RoleArn=APP_ROLE, RoleSessionName="ok", DurationSeconds=seconds)


def test_errors_are_counted_and_listed_in_model_order(client: Client) -> None:
    message = _validation_message(
        client,
        RoleArn="arn:aws:iam::1:r",
        RoleSessionName="a b",
        ExternalId="x",
        DurationSeconds=60,
    )
    assert message == "4 validation errors detected: " + "; ".join(
        [
            _constraint("arn:aws:iam::1:r", "roleArn", "have length greater than or equal to 20"),
            _constraint("a b", "roleSessionName", NAME_PATTERN),
            _constraint("60", "durationSeconds", "have value greater than or equal to 900"),
            _constraint("x", "externalId", "have length greater than or equal to 2"),
        ]
    )


def test_a_role_arn_that_is_no_arn(client: Client) -> None:
    message = _validation_message(client, RoleArn="this-is-not-an-arn-at-all")
    assert message == "Request ARN is invalid"


def test_missing_parameters(roles_server: ServerProcess) -> None:
    reply = _raw(roles_server, b"Action=AssumeRole&Version=2011-06-15")
    assert reply.status == 400, reply.body
    body = reply.body.decode()
    assert "<Code>ValidationError</Code>" in body
    expected = (
        f"2 validation errors detected: {NULL.format('roleArn')}; {NULL.format('roleSessionName')}"
    )
    assert f"<Message>{expected}</Message>" in body
    reply = _raw(roles_server, b"Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1")
    assert f"1 validation error detected: {NULL.format('roleArn')}" in reply.body.decode()


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"Policy": '{"Version": "2012-10-17", "Statement": []}'}, "Policy"),
        ({"PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]}, "PolicyArns"),
        ({"Tags": [{"Key": "team", "Value": "a"}]}, "Tags"),
        ({"SerialNumber": "arn:aws:iam::111122223333:mfa/alice", "TokenCode": "123456"}, None),
    ],
)
def test_unsupported_parameters_are_refused_not_ignored(
    client: Client, params: dict[str, Any], named: str | None
) -> None:
    # Ignoring a session policy or session tags would give the session more than was asked.
    message = _validation_message(client, **params)
    assert "is not supported by this service" in message
    if named is not None:
        assert f"parameter {named} " in message


def test_authentication_comes_first(client: Client, roles_server: ServerProcess) -> None:
    # A bad signature is refused as such, whatever the parameters.
    reply = raw_request(
        roles_server.endpoint,
        b"Action=AssumeRole&Version=2011-06-15&RoleSessionName=a",
        target=None,
        headers=FORM,
        access_key_id=USERS["alice"][0],
        secret_access_key="not-alice-secret",
        service="sts",
    )
    assert reply.status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in reply.body


def test_credentials_scoped_to_kms_are_refused(roles_server: ServerProcess) -> None:
    key, secret = USERS["alice"][:2]
    reply = raw_request(
        roles_server.endpoint,
        f"Action=AssumeRole&Version=2011-06-15&RoleArn={APP_ROLE}&RoleSessionName=s1".encode(),
        target=None,
        headers=FORM,
        access_key_id=key,
        secret_access_key=secret,
        service="kms",
    )
    assert reply.status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in reply.body


def test_other_sts_actions_stay_invalid(roles_server: ServerProcess) -> None:
    reply = _raw(roles_server, b"Action=GetSessionToken&Version=2011-06-15")
    assert reply.status == 400
    assert b"<Code>InvalidAction</Code>" in reply.body
