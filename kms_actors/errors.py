"""The AWS KMS error catalogue as exceptions.

Each leaf class is named exactly as the AWS error code (the ``__type`` a boto3 user sees), so
``type(err).__name__ == err.code``. ``status`` is the HTTP status AWS answers with: 400 for
client errors, 5xx only for the service model's fault shapes.
"""

from __future__ import annotations

from typing import Any, ClassVar


class KmsError(Exception):
    """Base of every error the service reports to a caller."""

    code: ClassVar[str] = "KmsError"
    status: ClassVar[int] = 400

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = cls.__name__

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.request_id = ""  # set by the clients to the request's id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code

    @property
    def response(self) -> dict[str, Any]:
        """The error as botocore's ``ClientError.response`` shows it."""
        return {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {"HTTPStatusCode": self.status, "RequestId": self.request_id},
        }


# --- Faults (5xx) -------------------------------------------------------------------------------


class KMSInternalException(KmsError):
    status = 500

    def __init__(
        self,
        message: str = "The request processing has failed because of an unknown "
        "error, exception or failure.",
    ) -> None:
        super().__init__(message)


class DependencyTimeoutException(KmsError):
    status = 503


class KeyUnavailableException(KmsError):
    status = 500


# --- KMS client errors (400) --------------------------------------------------------------------


class AlreadyExistsException(KmsError):
    pass


class ConflictException(KmsError):
    pass


class CustomKeyStoreHasCMKsException(KmsError):
    pass


class CustomKeyStoreInvalidStateException(KmsError):
    pass


class CustomKeyStoreNameInUseException(KmsError):
    pass


class CustomKeyStoreNotFoundException(KmsError):
    pass


class DisabledException(KmsError):
    pass


class DryRunOperationException(KmsError):
    pass


class ExpiredImportTokenException(KmsError):
    pass


class IncorrectKeyException(KmsError):
    pass


class IncorrectKeyMaterialException(KmsError):
    pass


class InvalidAliasNameException(KmsError):
    pass


class InvalidArnException(KmsError):
    pass


class InvalidCiphertextException(KmsError):
    pass


class InvalidGrantIdException(KmsError):
    pass


class InvalidGrantTokenException(KmsError):
    pass


class InvalidImportTokenException(KmsError):
    pass


class InvalidKeyUsageException(KmsError):
    pass


class InvalidMarkerException(KmsError):
    pass


class KMSInvalidMacException(KmsError):
    pass


class KMSInvalidSignatureException(KmsError):
    pass


class KMSInvalidStateException(KmsError):
    pass


class LimitExceededException(KmsError):
    pass


class MalformedPolicyDocumentException(KmsError):
    pass


class NotFoundException(KmsError):
    pass


class TagException(KmsError):
    pass


class UnsupportedOperationException(KmsError):
    pass


# --- Errors common to every AWS JSON service ----------------------------------------------------


class ValidationException(KmsError):
    pass


class SerializationException(KmsError):
    pass


class UnknownOperationException(KmsError):
    pass


class AccessDeniedException(KmsError):
    pass


class ThrottlingException(KmsError):
    pass


class RequestEntityTooLargeException(KmsError):
    status = 413


class MissingAuthenticationTokenException(KmsError):
    pass


class UnrecognizedClientException(KmsError):
    pass


class InvalidSignatureException(KmsError):
    pass


class IncompleteSignatureException(KmsError):
    pass


class InvalidClientTokenId(KmsError):
    status = 403


class ExpiredTokenException(KmsError):
    pass


class NotAuthorizedException(KmsError):
    """Raised for reserved AWS-managed names (``alias/aws/...``), as AWS does."""


def by_code(code: str) -> type[KmsError] | None:
    """Return the exception class for an AWS error code, or None."""
    return _CATALOGUE.get(code)


def _collect() -> dict[str, type[KmsError]]:
    found: dict[str, type[KmsError]] = {}
    pending: list[type[KmsError]] = [KmsError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            found[sub.code] = sub
            pending.append(sub)
    return found


_CATALOGUE = _collect()
