"""CloudTrail-shaped audit events for KMS, and the helpers that build them.

``AuditEvent`` encodes with ``msgspec.json.encode`` to CloudTrail's record JSON for KMS: the
same field names (``eventVersion``, ``userIdentity``, ``requestID``, ``sourceIPAddress``,
``resources[].ARN`` ...), in CloudTrail's order, ``requestParameters``/``responseElements`` as
objects or ``null``, and ``errorCode``/``errorMessage`` only when the request failed.

Build events with ``api_call_event`` (a request, allowed or not) and ``service_event`` (what
the service does by itself: deletion, rotation, expiry). Both take raw parameters and redact
them (``_redact``), so no caller can put plaintext or key material into the log by mistake.
The request path uses the two halves of ``api_call_event`` apart: ``capture_call`` (redact,
keep the raw pieces) while answering, ``call_event`` when the log records it (``_compose``).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from kms_actors.audit._redact import READ_ONLY_OPERATIONS, redact_request, redact_response
from kms_actors.domain.identifiers import UuidSequence, new_request_id
from kms_actors.domain.principal import Caller
from kms_actors.errors import KmsError

EVENT_VERSION = "1.08"
EVENT_SOURCE = "kms.amazonaws.com"
KEY_RESOURCE_TYPE = "AWS::KMS::Key"
AWS_INTERNAL = "AWS Internal"  # who CloudTrail names for the service's own actions

IdentityType = Literal["Root", "IAMUser", "AssumedRole", "AWSService", "Unknown"]
EventType = Literal["AwsApiCall", "AwsServiceEvent"]


class UserIdentity(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """CloudTrail's ``userIdentity``: who made the request (absent members are omitted)."""

    type: IdentityType | UnsetType = UNSET
    principal_id: str | UnsetType = UNSET
    arn: str | UnsetType = UNSET
    account_id: str
    access_key_id: str | UnsetType = UNSET
    user_name: str | UnsetType = UNSET
    invoked_by: str | UnsetType = UNSET


class Resource(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of ``resources``: a KMS key (or alias) the event concerns."""

    account_id: str = msgspec.field(name="accountId")
    type: str = KEY_RESOURCE_TYPE
    arn: str = msgspec.field(name="ARN")


class AuditEvent(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """One CloudTrail record; ``msgspec.json.encode(event)`` is CloudTrail's JSON."""

    event_version: str = EVENT_VERSION
    user_identity: UserIdentity
    event_time: str  # ISO 8601, UTC, whole seconds: "2026-11-29T05:00:00Z"
    event_source: str = EVENT_SOURCE
    event_name: str
    aws_region: str
    source_ip_address: str = msgspec.field(name="sourceIPAddress")
    user_agent: str
    error_code: str | UnsetType = UNSET
    error_message: str | UnsetType = UNSET
    request_parameters: dict[str, Any] | None
    response_elements: dict[str, Any] | None
    request_id: str | UnsetType = msgspec.field(default=UNSET, name="requestID")
    event_id: str = msgspec.field(name="eventID")
    read_only: bool
    resources: tuple[Resource, ...] = ()
    event_type: EventType = "AwsApiCall"
    management_event: bool = True
    recipient_account_id: str
    service_event_details: dict[str, Any] | UnsetType = UNSET
    event_category: str = "Management"


new_event_id = UuidSequence()


def format_event_time(epoch: float) -> str:
    """Return CloudTrail's ``eventTime`` for epoch seconds (UTC, whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def parse_event_time(value: str) -> float:
    """Return the epoch seconds of a CloudTrail ``eventTime``."""
    return datetime.datetime.fromisoformat(value).timestamp()


def _arn_account(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 else ""


def identity_type(arn: str) -> IdentityType:
    """Return CloudTrail's ``userIdentity.type`` for a principal ARN or service principal."""
    if not arn.startswith("arn:"):
        return "AWSService" if arn.endswith(".amazonaws.com") else "Unknown"
    resource = arn.split(":", 5)[-1]
    if resource == "root":
        return "Root"
    if resource.startswith("user/"):
        return "IAMUser"
    if resource.startswith(("assumed-role/", "role/")):
        return "AssumedRole"
    return "Unknown"


def user_identity(caller: Caller, principal_id: str = "") -> UserIdentity:
    """Return the ``userIdentity`` of a request's caller.

    ``principal_id`` is IAM's unique id of the principal (``Identity.user_id`` from the auth
    layer); for the root it defaults to the account id, otherwise it is omitted when unknown.
    """
    return identity_of(caller.arn, caller.account_id, caller.access_key_id, principal_id)


def identity_of(arn: str, account_id: str, access_key_id: str, principal_id: str) -> UserIdentity:
    """Return the ``userIdentity`` of a principal given by its recorded fields."""
    kind = identity_type(arn)
    if kind == "AWSService":
        return UserIdentity(type=kind, account_id=account_id, invoked_by=arn)
    if not principal_id and kind == "Root":
        principal_id = account_id
    return UserIdentity(
        type=kind,
        principal_id=principal_id or UNSET,
        arn=arn or UNSET,
        account_id=account_id,
        access_key_id=access_key_id or UNSET,
        user_name=arn.rsplit("/", 1)[-1] if kind == "IAMUser" else UNSET,
    )


def username(identity: UserIdentity) -> str | None:
    """Return what CloudTrail's LookupEvents calls the ``Username`` of an identity."""
    if identity.type == "Root":
        return "root"
    if isinstance(identity.user_name, str):
        return identity.user_name
    if identity.type == "AssumedRole" and isinstance(identity.arn, str):
        return identity.arn.rsplit("/", 1)[-1]
    if isinstance(identity.invoked_by, str):
        return identity.invoked_by
    return None


def resources_of(arns: Sequence[str]) -> tuple[Resource, ...]:
    """Return ``resources`` entries for key (or alias) ARNs, duplicates dropped, in order."""
    return tuple(Resource(account_id=_arn_account(a), arn=a) for a in dict.fromkeys(arns))


class CallCapture(msgspec.Struct, frozen=True, gc=False, array_like=True, tag=1):
    """What an event needs of one request, taken while it is answered: plain, redacted values.

    ``capture_call`` builds it (redacting at once, so nothing secret, and nothing the caller
    may change later, is kept); ``call_event`` turns it into the event when it is recorded,
    with the writer's caches (``_compose``). It is what crosses the pipe to the audit writer
    process (MessagePack, as an array tagged 1: positional and flat, to keep the request's
    path short), so it holds the caller's recorded fields rather than the ``Caller`` (whose compiled
    policies are neither needed nor encodable). Its ``event_id`` is usually left empty: the
    writer names the event after its place in the service's sequence (``AuditLog``), so an
    event sent twice (after a writer restart) has the same id and is stored once.
    """

    operation: str
    account_id: str
    region: str
    arn: str
    access_key_id: str
    source_ip: str
    user_agent: str
    principal_id: str
    request_parameters: dict[str, Any] | None
    response_elements: dict[str, Any] | None
    resources: tuple[str, ...]
    error_code: str | None
    error_message: str | None
    request_id: str
    event_time: float
    recipient_account_id: str
    event_id: str = ""


def capture_call(
    operation: str,
    caller: Caller,
    params: Mapping[str, Any] | msgspec.Struct,
    *,
    event_time: float,
    request_id: str | None,
    resources: Sequence[str] = (),
    response: Mapping[str, Any] | None = None,
    error: KmsError | None = None,
    principal_id: str = "",
    recipient_account_id: str | None = None,
) -> CallCapture:
    """Return the capture of one request (arguments as for ``api_call_event``).

    A missing ``request_id`` gets a fresh UUID-shaped one.
    """
    elements = None
    if error is None and operation not in READ_ONLY_OPERATIONS:
        key_arns = [arn for arn in resources if ":key/" in arn]
        elements = redact_response(operation, response or {}, key_arns[-1] if key_arns else None)
    return _capture(
        operation,
        caller,
        principal_id,
        redact_request(operation, params),
        elements,
        resources,
        error,
        request_id if request_id is not None else new_request_id(),
        event_time,
        recipient_account_id or caller.account_id,
    )


def capture_read_only(
    operation: str,
    caller: Caller,
    params: Mapping[str, Any] | msgspec.Struct,
    event_time: float,
    request_id: str,
    resources: Sequence[str],
    error: KmsError | None,
) -> CallCapture:
    """``capture_call`` of a read-only operation (no response elements), the caller's own
    account receiving it: the same capture, without the general case's keyword handling (it
    is on the path of every Encrypt and Decrypt in durable mode).
    """
    return _capture(
        operation,
        caller,
        caller.user_id,
        redact_request(operation, params),
        None,
        resources,
        error,
        request_id,
        event_time,
        caller.account_id,
    )


def _capture(
    operation: str,
    caller: Caller,
    principal_id: str,
    request_parameters: dict[str, Any] | None,
    response_elements: dict[str, Any] | None,
    resources: Sequence[str],
    error: KmsError | None,
    request_id: str,
    event_time: float,
    recipient_account_id: str,
) -> CallCapture:
    return CallCapture(
        operation,
        caller.account_id,
        caller.region,
        caller.arn,
        caller.access_key_id,
        caller.source_ip,
        caller.user_agent,
        principal_id,
        request_parameters,
        response_elements,
        tuple(resources),
        error.code if error is not None else None,
        error.message if error is not None and error.message else None,
        request_id,
        event_time,
        recipient_account_id,
    )


def call_event(
    call: CallCapture,
    identity: UserIdentity,
    resources: tuple[Resource, ...],
    event_time: str,
    event_id: str,
) -> AuditEvent:
    """Return the event of a captured request; the caller supplies the derived parts.

    They are ``identity_of(call.arn, call.account_id, call.access_key_id,
    call.principal_id)``, ``resources_of(call.resources)`` and
    ``format_event_time(call.event_time)`` (the writer keeps them cached from one event to
    the next), and the event id (``call.event_id``, else one of the writer's).
    """
    return AuditEvent(
        user_identity=identity,
        event_time=event_time,
        event_name=call.operation,
        aws_region=call.region,
        source_ip_address=call.source_ip,
        user_agent=call.user_agent,
        error_code=UNSET if call.error_code is None else call.error_code,
        error_message=UNSET if call.error_message is None else call.error_message,
        request_parameters=call.request_parameters,
        response_elements=call.response_elements,
        request_id=call.request_id,
        event_id=event_id,
        read_only=call.operation in READ_ONLY_OPERATIONS,
        resources=resources,
        recipient_account_id=call.recipient_account_id,
    )


def api_call_event(
    *,
    operation: str,
    caller: Caller,
    params: Mapping[str, Any],
    event_time: float,
    request_id: str,
    resources: Sequence[str] = (),
    response: Mapping[str, Any] | None = None,
    error: KmsError | None = None,
    principal_id: str = "",
    recipient_account_id: str | None = None,
) -> AuditEvent:
    """Return the event for one request, successful or refused.

    Args:
        operation: the KMS operation name, e.g. ``"Encrypt"`` (CloudTrail's ``eventName``).
        caller: who called, from where (region, source IP, user agent, access key); the
            source IP and user agent are recorded as given, so in-process callers should
            name themselves (e.g. ``user_agent="kms_actors-embedded"``).
        params: the request's parameters as the wire decoded them (PascalCase); only what
            CloudTrail keeps is recorded (``redact_request``).
        event_time: when the request was made, epoch seconds.
        request_id: the request id sent back to the caller.
        resources: ARNs of the keys (or alias and key) the request concerns, in AWS's order.
        response: the response, for mutations (``redact_response`` keeps the safe parts).
        error: the error the caller got; its code and message are recorded.
        principal_id: IAM's unique id of the caller, if known.
        recipient_account_id: the account whose log this is (default: the caller's).
    """
    call = capture_call(
        operation,
        caller,
        params,
        event_time=event_time,
        request_id=request_id,
        resources=resources,
        response=response,
        error=error,
        principal_id=principal_id,
        recipient_account_id=recipient_account_id,
    )
    return call_event(
        call,
        user_identity(caller, principal_id),
        resources_of(call.resources),
        format_event_time(event_time),
        call.event_id or new_event_id(),
    )


def service_event(
    *,
    event_name: str,
    account_id: str,
    region: str,
    event_time: float,
    resources: Sequence[str],
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Return an ``AwsServiceEvent``: something the service did by itself.

    For example ``DeleteKey`` when a scheduled deletion comes due, or ``RotateKey`` with
    ``details={"rotationType": "AUTOMATIC", "keyId": ...}``. ``details`` becomes
    ``serviceEventDetails``; it must not hold key material.
    """
    return AuditEvent(
        user_identity=UserIdentity(account_id=account_id, invoked_by=AWS_INTERNAL),
        event_time=format_event_time(event_time),
        event_name=event_name,
        aws_region=region,
        source_ip_address=AWS_INTERNAL,
        user_agent=AWS_INTERNAL,
        request_parameters=None,
        response_elements=None,
        event_id=new_event_id(),
        read_only=False,
        resources=resources_of(resources),
        event_type="AwsServiceEvent",
        recipient_account_id=account_id,
        service_event_details=dict(details) if details else UNSET,
    )
