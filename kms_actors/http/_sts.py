"""The STS actions tools ask on the same endpoint (query protocol, XML answers)."""

from __future__ import annotations

import urllib.parse
from xml.sax.saxutils import escape

from kms_actors.auth import Identity
from kms_actors.errors import (
    ExpiredTokenException,
    IncompleteSignatureException,
    InvalidClientTokenId,
    InvalidSignatureException,
    KmsError,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
XML = "text/xml"


class StsError(Exception):
    """An STS error: carries the code, message and HTTP status AWS uses."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def action_of(body: bytes) -> str | None:
    """Return the ``Action`` of a form-encoded STS request body, if any."""
    try:
        form = urllib.parse.parse_qs(body.decode("ascii"), keep_blank_values=True)
    except UnicodeDecodeError:
        return None
    values = form.get("Action")
    return values[0] if values else None


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


# STS names the SigV4 failures differently from the JSON services.
_STS_CODES: dict[type[KmsError], tuple[str, int]] = {
    UnrecognizedClientException: ("InvalidClientTokenId", 403),
    InvalidClientTokenId: ("InvalidClientTokenId", 403),
    InvalidSignatureException: ("SignatureDoesNotMatch", 403),
    ExpiredTokenException: ("ExpiredToken", 403),
    IncompleteSignatureException: ("IncompleteSignature", 400),
    MissingAuthenticationTokenException: ("MissingAuthenticationToken", 403),
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
