"""CloudTrail's LookupEvents errors, named like their AWS codes.

They mirror ``KmsError`` (``code`` is the class name, ``status`` 400, ``message``,
``response``) without subclassing it: ``kms_actors.errors`` builds its catalogue of KMS error
codes when it is imported, and these are CloudTrail's codes, not KMS's. The HTTP layer sends
them as ``{"__type": code, "message": ...}`` like any service error.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LookupEventsError(Exception):
    """Base of the errors LookupEvents answers with."""

    code: ClassVar[str] = "LookupEventsError"
    status: ClassVar[int] = 400

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = cls.__name__

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code

    @property
    def response(self) -> dict[str, Any]:
        """The error as botocore's ``ClientError.response`` shows it."""
        return {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }


class InvalidLookupAttributesException(LookupEventsError):
    """A lookup attribute is unknown, malformed, or there is more than one."""


class InvalidTimeRangeException(LookupEventsError):
    """StartTime is after EndTime, or a time is not a valid timestamp."""


class InvalidMaxResultsException(LookupEventsError):
    """MaxResults is not between 1 and 50."""


class InvalidNextTokenException(LookupEventsError):
    """NextToken is malformed or came from a request with other parameters."""


class InvalidEventCategoryException(LookupEventsError):
    """EventCategory is not ``insight``."""
