"""The STS actions tools ask on the same endpoint (query protocol, XML answers).

``answer`` runs one verified request and records it in the audit log as CloudTrail would
(``eventSource: "sts.amazonaws.com"``), committed before the answer, failing closed.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import urllib.parse
from collections.abc import Mapping
from typing import Final, NamedTuple
from xml.sax.saxutils import escape

from kms_actors.audit import AuditEvent, AuditLog, sts_event
from kms_actors.auth import AssumeRole, AssumeRoleError, Identity, IdentityStore, RoleStore
from kms_actors.domain.principal import Caller
from kms_actors.errors import (
    ExpiredTokenException,
    IncompleteSignatureException,
    InvalidClientTokenId,
    InvalidSignatureException,
    KmsError,
    KMSInternalException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
XML = "text/xml"

log = logging.getLogger("kms_actors.http")


class StsError(Exception):
    """An STS error: carries the code, message and HTTP status AWS uses."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def form_of(body: bytes) -> dict[str, str] | None:
    """Return the parameters of a form-encoded STS request body (the first of repeated names).

    None when the body cannot be a form (not ASCII, or escapes that are not UTF-8).
    """
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("ascii"), keep_blank_values=True, errors="strict"
        )
    except UnicodeDecodeError:
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


async def answer(
    audit: AuditLog | None,
    store: IdentityStore,
    caller: Caller,
    identity: Identity,
    form: Mapping[str, str],
    *,
    now: float,
    request_id: str,
) -> tuple[int, bytes]:
    """Answer one verified STS request and audit it: return the HTTP status and XML body.

    ``caller`` is the request's principal as the audit log records it, ``identity`` the
    verified one. Unless ``audit`` is None, a request naming an STS action leaves exactly one
    event, successful or refused, recorded before the answer is returned (in durable mode);
    when it cannot be recorded the caller gets InternalFailure, never an unrecorded answer.
    Nothing unexpected escapes: it becomes InternalFailure (the traceback is logged).
    """
    action = form.get("Action", "")
    body, session, failure = b"", None, None
    try:
        body, session = _run(
            action,
            audit,
            store,
            identity,
            form,
            now=now,
            source_ip=caller.source_ip,
            request_id=request_id,
        )
    except StsError as error:
        failure = error
    except KmsError as error:
        failure = sts_error_of(error)
    except Exception:
        log.exception("request %s failed unexpectedly", request_id)
        failure = sts_error_of(KMSInternalException())
    if audit is not None:
        refused = None if failure is None else (failure.code, failure.message)
        event = sts_event(
            action,
            caller,
            event_time=now,
            request_id=request_id,
            form=form,
            session=session,
            error=refused,
        )
        failure = await _record(audit, event) or failure
    if failure is not None:
        return failure.status, error_body(failure, request_id)
    return 200, body


def _run(
    action: str,
    audit: AuditLog | None,
    store: IdentityStore,
    identity: Identity,
    form: Mapping[str, str],
    *,
    now: float,
    source_ip: str,
    request_id: str,
) -> tuple[bytes, Identity | None]:
    """Run one STS action: return its XML answer and the session AssumeRole issued.

    Raises:
        StsError: ``InvalidAction`` (no action this service answers), or AssumeRole's.
        KMSInternalException: AssumeRole while the audit log cannot be written.
    """
    if action == "GetCallerIdentity":
        return get_caller_identity(identity, request_id), None
    if action == "AssumeRole":
        if audit is not None:
            audit.ensure_healthy()  # fail closed: issue no session that cannot be recorded
        return assume_role(
            store, identity, form, now=now, source_ip=source_ip, request_id=request_id
        )
    raise StsError(
        "InvalidAction", f"Could not find operation {action} for version NO_VERSION_SPECIFIED"
    )


async def _record(audit: AuditLog, event: AuditEvent | None) -> StsError | None:
    """Record an event (None: nothing to record); return the error to answer if it failed."""
    if event is None:
        return None
    try:
        await audit.record(event)
    except KmsError as error:  # KMSInternalException: the log cannot be written
        return sts_error_of(error)
    return None


def get_caller_identity(identity: Identity, request_id: str) -> bytes:
    """Return GetCallerIdentity's XML answer for ``identity``."""
    return (
        f'<GetCallerIdentityResponse xmlns="{XMLNS}">'
        "<GetCallerIdentityResult>"
        f"<Arn>{escape(identity.arn)}</Arn>"
        f"<UserId>{escape(identity.user_id)}</UserId>"
        f"<Account>{escape(identity.account_id)}</Account>"
        "</GetCallerIdentityResult>"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    ).encode()


def assume_role(
    store: IdentityStore,
    caller: Identity,
    form: Mapping[str, str],
    *,
    now: float,
    source_ip: str,
    request_id: str,
) -> tuple[bytes, Identity]:
    """Answer AssumeRole: issue a session of the role to ``caller``, into ``store``.

    Returns the XML answer and the session.

    Raises:
        StsError: ``ValidationError`` (a parameter breaks STS's constraints, or the duration
            exceeds the role's), ``AccessDenied`` (403: no such role, an account root, or
            the trust and identity policies do not allow it).
    """
    request = assume_role_request(form)
    roles = store if isinstance(store, RoleStore) else RoleStore(())  # no roles: all denied
    try:
        session = roles.assume_role(caller, request, now=now, source_ip=source_ip)
    except AssumeRoleError as error:
        raise StsError(error.code, error.message, error.status) from None
    log.info("request %s: %s assumed %s", request_id, caller.arn, session.arn)
    expiration = dt.datetime.fromtimestamp(session.expiration or now, dt.UTC)
    source = request.source_identity
    return (
        f'<AssumeRoleResponse xmlns="{XMLNS}"><AssumeRoleResult>'
        + ("" if source is None else f"<SourceIdentity>{escape(source)}</SourceIdentity>")
        + "<AssumedRoleUser>"
        f"<AssumedRoleId>{escape(session.user_id)}</AssumedRoleId>"
        f"<Arn>{escape(session.arn)}</Arn>"
        "</AssumedRoleUser><Credentials>"
        f"<AccessKeyId>{session.access_key_id}</AccessKeyId>"
        f"<SecretAccessKey>{escape(session.secret_access_key)}</SecretAccessKey>"
        f"<SessionToken>{escape(session.session_token or '')}</SessionToken>"
        f"<Expiration>{expiration.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>"
        "</Credentials></AssumeRoleResult>"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    ).encode(), session


class _Text(NamedTuple):
    member: str  # as in the form
    label: str  # as STS names it in validation messages
    min: int
    max: int
    pattern: str  # as STS's model writes it (and its messages quote it)
    regex: re.Pattern[str]


class _Integer(NamedTuple):
    member: str
    label: str
    min: int
    max: int


_NAME_PATTERN: Final = r"[\w+=,.@-]*"
_NAME: Final = re.compile(_NAME_PATTERN, re.ASCII)
_REQUIRED: Final = ("RoleArn", "RoleSessionName")
# AssumeRole's members in the order of STS's model, which lists validation errors in it.
_MEMBERS: Final[tuple[_Text | _Integer, ...]] = (
    _Text(
        "RoleArn",
        "roleArn",
        20,
        2048,
        r"[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+",
        re.compile("[\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]+"),
    ),
    _Text("RoleSessionName", "roleSessionName", 2, 64, _NAME_PATTERN, _NAME),
    _Integer("DurationSeconds", "durationSeconds", 900, 43_200),
    _Text(
        "ExternalId",
        "externalId",
        2,
        1224,
        r"[\w+=,.@:\/-]*",
        re.compile(r"[\w+=,.@:/-]*", re.ASCII),
    ),
    _Text("SourceIdentity", "sourceIdentity", 2, 64, _NAME_PATTERN, _NAME),
    _Integer("MinimumSessionTokenSize", "minimumSessionTokenSize", 0, 4096),
)
_DIGITS: Final = re.compile(r"-?[0-9]{1,12}")
# Session policies, session tags and MFA would change what a session may do or how it is
# trusted: rather than ignore them (and grant more than was asked), they are refused.
_UNSUPPORTED: Final = (
    "Policy",
    "PolicyArns.",
    "Tags.",
    "TransitiveTagKeys.",
    "SerialNumber",
    "TokenCode",
    "ProvidedContexts.",
)
_ARN: Final = re.compile(r"arn:[^:]+:[^:]+:[^:]*:[^:]*:.+", re.DOTALL)


def assume_role_request(form: Mapping[str, str]) -> AssumeRole:
    """Return the AssumeRole request of a form, checked as STS checks it.

    Raises:
        StsError: ``ValidationError``: STS's "N validation errors detected: ..." for
            parameters that break the model's constraints, "Request ARN is invalid" for a
            RoleArn that is no ARN, or a parameter this service does not support.
    """
    for name in form:
        if name.startswith(_UNSUPPORTED):
            raise StsError(
                "ValidationError",
                f"The AssumeRole parameter {name.split('.')[0]} is not supported by this "
                "service (session policies, session tags and MFA are not implemented).",
            )
    problems: list[str] = []
    numbers: dict[str, int] = {}
    for member in _MEMBERS:
        value = form.get(member.member)
        if isinstance(member, _Text):
            problems.extend(_text_problems(value, member))
        elif value is not None:
            problem = _integer_problem(value, member)
            if problem:
                problems.append(problem)
            else:
                numbers[member.member] = int(value)
    if problems:
        count = len(problems)
        raise StsError(
            "ValidationError",
            f"{count} validation error{'s' if count > 1 else ''} detected: {'; '.join(problems)}",
        )
    if not _ARN.fullmatch(form["RoleArn"]):
        raise StsError("ValidationError", "Request ARN is invalid")
    return AssumeRole(
        role_arn=form["RoleArn"],
        session_name=form["RoleSessionName"],
        duration_seconds=numbers.get("DurationSeconds"),
        external_id=form.get("ExternalId"),
        source_identity=form.get("SourceIdentity"),
        min_token_size=numbers.get("MinimumSessionTokenSize", 0),
    )


def _text_problems(value: str | None, text: _Text) -> list[str]:
    if value is None:
        if text.member not in _REQUIRED:
            return []
        return [
            f"Value null at '{text.label}' failed to satisfy constraint: Member must not be null"
        ]
    must = f"Value '{value}' at '{text.label}' failed to satisfy constraint: Member must"
    problems = []
    if len(value) < text.min:
        problems.append(f"{must} have length greater than or equal to {text.min}")
    if len(value) > text.max:
        problems.append(f"{must} have length less than or equal to {text.max}")
    if not text.regex.fullmatch(value):
        problems.append(f"{must} satisfy regular expression pattern: {text.pattern}")
    return problems


def _integer_problem(value: str, integer: _Integer) -> str:
    must = f"Value '{value}' at '{integer.label}' failed to satisfy constraint: Member must"
    if not _DIGITS.fullmatch(value):
        return f"{must} be a number"
    if int(value) < integer.min:
        return f"{must} have value greater than or equal to {integer.min}"
    if int(value) > integer.max:
        return f"{must} have value less than or equal to {integer.max}"
    return ""


# STS names the SigV4 failures, and an internal failure, differently from the JSON services.
_STS_CODES: dict[type[KmsError], tuple[str, int]] = {
    UnrecognizedClientException: ("InvalidClientTokenId", 403),
    InvalidClientTokenId: ("InvalidClientTokenId", 403),
    InvalidSignatureException: ("SignatureDoesNotMatch", 403),
    ExpiredTokenException: ("ExpiredToken", 403),
    IncompleteSignatureException: ("IncompleteSignature", 400),
    MissingAuthenticationTokenException: ("MissingAuthenticationToken", 403),
    KMSInternalException: ("InternalFailure", 500),
}


def sts_error_of(error: KmsError) -> StsError:
    """Translate an error into STS's words (e.g. SignatureDoesNotMatch, InvalidClientTokenId)."""
    code, status = _STS_CODES.get(type(error), (error.code, error.status))
    return StsError(code, error.message, status)


def error_body(error: StsError, request_id: str) -> bytes:
    """Return the XML body STS sends for an error."""
    kind = "Receiver" if error.status >= 500 else "Sender"
    return (
        f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
