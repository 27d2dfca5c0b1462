"""The KMS service model (pruned from botocore's by ``scripts/gen_wire.py``) and its catalogue.

The JSON is read once, at import, into typed Structs; everything model-driven in this package
(validation, shape lookup, timestamp conversion) reads it through this module.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any, Final

import msgspec

from kms_actors.errors import UnknownOperationException
from kms_actors.wire import _shapes
from kms_actors.wire._base import Shape

MODEL_RESOURCE: Final = "kms-2014-11-01.json"


class ShapeRef(msgspec.Struct, frozen=True):
    """A reference to a shape: an operation's input/output/error or a member's target."""

    shape: str
    deprecated: bool = False


class ShapeDef(msgspec.Struct, frozen=True):
    """One shape of the model, with the constraints AWS validates requests against."""

    type: str
    members: dict[str, ShapeRef] = {}
    required: list[str] = []
    min: int | None = None
    max: int | None = None
    enum: list[str] = []
    pattern: str | None = None
    sensitive: bool = False
    member: ShapeRef | None = None
    key: ShapeRef | None = None
    value: ShapeRef | None = None
    exception: bool = False
    fault: bool = False
    deprecated: bool = False


class OperationDef(msgspec.Struct, frozen=True):
    """One operation: its input, optional output and the errors the model declares."""

    name: str
    input: ShapeRef
    output: ShapeRef | None = None
    errors: list[ShapeRef] = []


class ServiceModel(msgspec.Struct, frozen=True):
    """The whole pruned model."""

    version: str
    metadata: dict[str, Any]
    operations: dict[str, OperationDef]
    shapes: dict[str, ShapeDef]


MODEL: Final = msgspec.json.decode(
    resources.files("kms_actors.wire").joinpath(MODEL_RESOURCE).read_bytes(), type=ServiceModel
)

#: The operation names of the API, e.g. ``"GenerateDataKeyWithoutPlaintext"``.
OPERATIONS: Final = frozenset(MODEL.operations)

# botocore.xform_name's rule for names without acronym runs, which holds for every KMS
# operation (tests check all of them against botocore itself).
_WORD_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

_METHODS: Final = {_WORD_BOUNDARY.sub("_", name).lower(): name for name in OPERATIONS}


def _shape_class(name: str) -> type[Shape]:
    cls = getattr(_shapes, name)
    if not (isinstance(cls, type) and issubclass(cls, Shape)):
        raise TypeError(f"_shapes.{name} is not a Shape; regenerate with scripts/gen_wire.py")
    return cls


_REQUEST_TYPES: Final = {
    name: _shape_class(operation.input.shape) for name, operation in MODEL.operations.items()
}
# An operation without output in the model answers with the empty ``<Operation>Response``
# that scripts/gen_wire.py generates for it.
_RESPONSE_TYPES: Final = {
    name: _shape_class(operation.output.shape if operation.output else f"{name}Response")
    for name, operation in MODEL.operations.items()
}


def operation_for_method(method: str) -> str | None:
    """Return the operation a boto3-style method name calls, or None if there is none.

    ``"generate_data_key_without_plaintext"`` gives ``"GenerateDataKeyWithoutPlaintext"``.
    """
    return _METHODS.get(method)


def operation(name: str) -> OperationDef:
    """Return the model of operation ``name``.

    Raises:
        UnknownOperationException: ``name`` is not a KMS operation.
    """
    try:
        return MODEL.operations[name]
    except KeyError:
        raise UnknownOperationException() from None


def shape(name: str) -> ShapeDef:
    """Return the model of shape ``name`` (a KeyError means a bug, not a bad request)."""
    return MODEL.shapes[name]


def request_type(name: str) -> type[Shape]:
    """Return the request Struct of operation ``name``, e.g. ``EncryptRequest``.

    Raises:
        UnknownOperationException: ``name`` is not a KMS operation.
    """
    try:
        return _REQUEST_TYPES[name]
    except KeyError:
        raise UnknownOperationException() from None


def response_type(name: str) -> type[Shape]:
    """Return the response Struct of operation ``name``, e.g. ``EncryptResponse``.

    Operations whose model has no output get an empty one, e.g. ``TagResourceResponse``.

    Raises:
        UnknownOperationException: ``name`` is not a KMS operation.
    """
    try:
        return _RESPONSE_TYPES[name]
    except KeyError:
        raise UnknownOperationException() from None
