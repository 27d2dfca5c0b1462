"""CloudTrail-shaped audit events for the STS actions answered on the same endpoint.

``sts_event`` builds the ``AuditEvent`` CloudTrail writes for an STS call, with
``eventSource: "sts.amazonaws.com"``. For AssumeRole it keeps what CloudTrail keeps (IAM user
guide, "Example AWS STS API events in CloudTrail log"): the role, session name, duration,
external id and source identity asked for; the session's access key id, expiration and
assumed-role user; the role as the event's resource. It never records the session's secret
access key or session token (CloudTrail logs the token; this log does not), nor the request's
unsupported parameters (session policies, tags, MFA codes), which are refused anyway.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Final, Protocol

from msgspec import UNSET

from kms_actors.audit._event import (
    AuditEvent,
    Resource,
    format_event_time,
    new_event_id,
    user_identity,
)
from kms_actors.domain.principal import Caller

STS_EVENT_SOURCE: Final = "sts.amazonaws.com"
ROLE_RESOURCE_TYPE: Final = "AWS::IAM::Role"
# Every STS action (botocore's model): a request naming one is recorded, even the ones this
# service refuses as InvalidAction, so that no authenticated STS call goes unrecorded. Other
# names are not recorded (as KMS requests naming no KMS operation), so ``eventName`` is
# never text of the caller's choosing.
STS_ACTIONS: Final = (
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "AssumeRoot",
    "DecodeAuthorizationMessage",
    "GetAccessKeyInfo",
    "GetCallerIdentity",
    "GetDelegatedAccessToken",
    "GetFederationToken",
    "GetSessionToken",
    "GetWebIdentityToken",
)
# CloudTrail marks these readOnly: true; the actions that issue credentials are not.
_READ_ONLY: Final = frozenset(
    {"DecodeAuthorizationMessage", "GetAccessKeyInfo", "GetCallerIdentity"}
)
# AssumeRole's form members CloudTrail records, as it names them.
_ASSUME_ROLE_PARAMETERS: Final = (
    ("RoleArn", "roleArn"),
    ("RoleSessionName", "roleSessionName"),
    ("DurationSeconds", "durationSeconds"),
    ("ExternalId", "externalId"),
    ("SourceIdentity", "sourceIdentity"),
)
_INTEGER: Final = re.compile(r"-?[0-9]{1,12}")
_ROLE_ARN: Final = re.compile(r"arn:[^:]+:iam::(?P<account>[0-9]{12}):role/.+", re.DOTALL)
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


class IssuedSession(Protocol):
    """What an AssumeRole event records of the session it issued (``auth.Identity`` fits)."""

    @property
    def access_key_id(self) -> str:
        """The session's access key id (ASIA...)."""

    @property
    def arn(self) -> str:
        """The assumed-role ARN (``arn:aws:sts::<account>:assumed-role/<role>/<session>``)."""

    @property
    def user_id(self) -> str:
        """The assumed-role id (``AROA...:<session>``)."""

    @property
    def expiration(self) -> float | None:
        """When the session ends, epoch seconds."""


def format_expiration(epoch: float) -> str:
    """Return a credentials ``expiration`` as CloudTrail writes it: "Nov 29, 2026, 3:00:00 PM".

    UTC; English month names whatever the locale.
    """
    t = time.gmtime(epoch)
    hour = t.tm_hour % 12 or 12
    noon = "AM" if t.tm_hour < 12 else "PM"
    clock = f"{hour}:{t.tm_min:02d}:{t.tm_sec:02d} {noon}"
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year}, {clock}"


def sts_event(
    action: str,
    caller: Caller,
    *,
    event_time: float,
    request_id: str,
    form: Mapping[str, str] | None = None,
    session: IssuedSession | None = None,
    error: tuple[str, str] | None = None,
) -> AuditEvent | None:
    """Return the event of one STS request, successful or refused.

    None for an action STS does not have: nothing is recorded for it, as for a KMS request
    naming no KMS operation.

    Args:
        action: the STS action (CloudTrail's ``eventName``).
        caller: who called, from where (as for KMS events); its ``user_id`` is recorded
            as ``userIdentity.principalId``.
        event_time: when the request was made, epoch seconds.
        request_id: the request id sent back to the caller.
        form: the request's form parameters; only AssumeRole's listed members are kept.
        session: the session AssumeRole issued (None when it failed).
        error: the STS error code and message the caller got, if it failed.
    """
    if action not in STS_ACTIONS:
        return None
    parameters: dict[str, Any] | None = None
    resources: tuple[Resource, ...] = ()
    if action == "AssumeRole":
        parameters = _assume_role_parameters(form or {})
        resources = _role_resource(parameters.get("roleArn"))
    elements = None
    if session is not None and error is None:
        elements = _assume_role_elements(session, parameters or {})
    return AuditEvent(
        user_identity=user_identity(caller, caller.user_id),
        event_time=format_event_time(event_time),
        event_source=STS_EVENT_SOURCE,
        event_name=action,
        aws_region=caller.region,
        source_ip_address=caller.source_ip,
        user_agent=caller.user_agent,
        error_code=error[0] if error is not None else UNSET,
        error_message=error[1] if error is not None and error[1] else UNSET,
        request_parameters=parameters or None,
        response_elements=elements,
        request_id=request_id,
        event_id=new_event_id(),
        read_only=action in _READ_ONLY,
        resources=resources,
        recipient_account_id=caller.account_id,
    )


def _assume_role_parameters(form: Mapping[str, str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for member, name in _ASSUME_ROLE_PARAMETERS:
        value = form.get(member)
        if value is None:
            continue
        # A duration is a number in CloudTrail; one that is not a number is kept as sent.
        numeric = member == "DurationSeconds" and _INTEGER.fullmatch(value)
        parameters[name] = int(value) if numeric else value
    return parameters


def _role_resource(role_arn: object) -> tuple[Resource, ...]:
    """Name the role asked for as the event's resource, if it is a role ARN at all."""
    match = _ROLE_ARN.fullmatch(role_arn) if isinstance(role_arn, str) else None
    if match is None:
        return ()
    return (Resource(account_id=match["account"], type=ROLE_RESOURCE_TYPE, arn=match[0]),)


def _assume_role_elements(session: IssuedSession, parameters: Mapping[str, Any]) -> dict[str, Any]:
    credentials = {"accessKeyId": session.access_key_id}
    if session.expiration is not None:
        credentials["expiration"] = format_expiration(session.expiration)
    elements: dict[str, Any] = {
        "credentials": credentials,
        "assumedRoleUser": {"assumedRoleId": session.user_id, "arn": session.arn},
    }
    if "sourceIdentity" in parameters:
        elements["sourceIdentity"] = parameters["sourceIdentity"]
    return elements
