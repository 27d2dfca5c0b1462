"""The error catalogue: AWS codes, HTTP statuses and the shape botocore reports."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from kms_actors import errors
from kms_actors.errors import (
    DisabledException,
    KmsError,
    KMSInternalException,
    KMSInvalidStateException,
    NotFoundException,
    by_code,
)

SERVICE_MODEL = pathlib.Path(errors.__file__).parent / "wire" / "kms-2014-11-01.json"


def catalogue() -> list[type[KmsError]]:
    found: list[type[KmsError]] = []
    pending: list[type[KmsError]] = [KmsError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.append(sub)
            pending.append(sub)
    return found


def model_exceptions() -> dict[str, dict[str, Any]]:
    shapes: dict[str, dict[str, Any]] = json.loads(SERVICE_MODEL.read_text())["shapes"]
    return {name: shape for name, shape in shapes.items() if shape.get("exception")}


@pytest.mark.parametrize("cls", catalogue(), ids=lambda cls: cls.__name__)
def test_code_is_the_class_name_and_by_code_finds_it(cls: type[KmsError]) -> None:
    assert cls.code == cls.__name__
    assert by_code(cls.__name__) is cls


def test_by_code_of_an_unknown_code_is_none() -> None:
    assert by_code("NoSuchException") is None
    assert by_code("KmsError") is None


# Custom key store errors (CloudHsm*, Xks*) are not in the catalogue: those operations are not run.
@pytest.mark.parametrize("name", [name for name in sorted(model_exceptions()) if by_code(name)])
def test_status_follows_the_service_model(name: str) -> None:
    cls = by_code(name)
    assert cls is not None
    # The model marks server-side errors as faults; AWS answers those with 5xx, the rest 400.
    if model_exceptions()[name].get("fault"):
        assert cls.status >= 500
    else:
        assert cls.status == 400


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.KMSInternalException, 500),
        (errors.KeyUnavailableException, 500),
        (errors.DependencyTimeoutException, 503),
        (errors.DisabledException, 400),
        (errors.KMSInvalidStateException, 400),
        (errors.NotFoundException, 400),
    ],
)
def test_status(cls: type[KmsError], status: int) -> None:
    assert cls.status == status


def test_the_state_errors_are_distinct_codes() -> None:
    assert DisabledException.code == "DisabledException"
    assert KMSInvalidStateException.code == "KMSInvalidStateException"
    assert not issubclass(DisabledException, KMSInvalidStateException)


def test_response_has_botocores_shape() -> None:
    error = NotFoundException("Invalid keyId nope")
    assert error.response == {
        "Error": {"Code": "NotFoundException", "Message": "Invalid keyId nope"},
        "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": ""},
    }


def test_str_shows_code_and_message() -> None:
    assert str(NotFoundException("gone")) == "NotFoundException: gone"
    assert str(NotFoundException()) == "NotFoundException"


def test_internal_exception_has_awss_default_message() -> None:
    error = KMSInternalException()
    assert error.message == (
        "The request processing has failed because of an unknown error, exception or failure."
    )
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
