"""Requests in, responses out: between builtins or JSON and the shape Structs.

Requests are validated against the model first (AWS's errors, AWS's words), then converted
with msgspec. Responses go out as JSON for HTTP, or as boto3's response dict for the embedded
client, with timestamps turned into UTC datetimes where the model says a member is one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from kms_actors.errors import SerializationException
from kms_actors.wire import _messages as messages
from kms_actors.wire import _model
from kms_actors.wire._base import Shape
from kms_actors.wire._normalize import normalize
from kms_actors.wire._validate import check_request

_JSON_DECODER: Final = msgspec.json.Decoder()
_JSON_ENCODER: Final = msgspec.json.Encoder()
# Kept as they are by to_builtins: boto3 hands blobs back as bytes.
_BINARY: Final = (bytes, bytearray, memoryview)

# Rewrites one builtins value of a shape in place (or returns its replacement).
_Converter = Callable[[Any], Any]


def decode_request(operation: str, params: Mapping[str, Any], *, blobs_are_base64: bool) -> Shape:
    """Validate a request in builtins form and convert it to the operation's request Struct.

    Args:
        operation: The operation name, e.g. ``"Encrypt"``.
        params: The request's members by their AWS names: decoded JSON (blobs as base64
            strings) or the embedded client's boto3-style parameters (blobs as bytes).
        blobs_are_base64: Whether blob members arrive base64-encoded.

    Raises:
        UnknownOperationException: ``operation`` is not a KMS operation.
        SerializationException: A value has the wrong type, or a blob is not valid base64.
        ValidationException: Values break model constraints.
    """
    request_type = _model.request_type(operation)
    if check_request(operation, params, blobs_are_base64=blobs_are_base64):
        shape_name = _model.operation(operation).input.shape
        params = normalize(shape_name, params, blobs_are_base64=blobs_are_base64)
    try:
        return msgspec.convert(params, request_type)
    except msgspec.ValidationError as exc:
        # Validation has checked every type, so this is a bug or a gap; AWS says nothing more.
        raise SerializationException() from exc


def decode_json_request(operation: str, body: bytes) -> Shape:
    """Decode an AWS JSON 1.1 request body for ``operation``.

    An empty body is an empty request (``{}``).

    Raises:
        UnknownOperationException: ``operation`` is not a KMS operation.
        SerializationException: The body is not JSON, not a JSON object, or has a value of the
            wrong type or a blob that is not valid base64.
        ValidationException: Values break model constraints.
    """
    _model.request_type(operation)  # AWS rejects an unknown operation before reading the body.
    if not body:
        return decode_request(operation, {}, blobs_are_base64=True)
    try:
        params = _JSON_DECODER.decode(body)
    except msgspec.DecodeError:
        # AWS answers malformed JSON with a bare SerializationException.
        raise SerializationException() from None
    if not isinstance(params, dict):
        raise SerializationException(messages.LIST_FOUND if isinstance(params, list) else "")
    return decode_request(operation, params, blobs_are_base64=True)


def to_json(response: Shape) -> bytes:
    """Encode a response as its JSON body (blobs base64, timestamps epoch seconds)."""
    return _JSON_ENCODER.encode(response)


def to_python(operation: str, response: Shape) -> dict[str, Any]:
    """Return boto3's response dict for ``response`` (without ``ResponseMetadata``).

    Keys are AWS's member names, blobs stay ``bytes``, timestamps become UTC datetimes and
    unset members are absent.

    Raises:
        UnknownOperationException: ``operation`` is not a KMS operation.
        TypeError: ``response`` is not ``operation``'s response Struct.
    """
    expected = _model.response_type(operation)
    if type(response) is not expected:
        raise TypeError(f"{operation} answers with {expected.__name__}, not {type(response)}")
    result: dict[str, Any] = msgspec.to_builtins(response, builtin_types=_BINARY)
    output = _model.operation(operation).output
    converter = _converter(output.shape) if output else None
    if converter is not None:
        converter(result)
    return result


def _to_datetime(epoch_seconds: Any) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)


_CONVERTERS: Final[dict[str, _Converter | None]] = {}


def _converter(name: str) -> _Converter | None:
    """Return how to convert timestamps within shape ``name``; None if it holds none."""
    if name in _CONVERTERS:
        return _CONVERTERS[name]
    _CONVERTERS[name] = None  # A recursive reference adds no timestamps of its own.
    converter = _compile_converter(_model.shape(name))
    _CONVERTERS[name] = converter
    return converter


def _compile_converter(shape: _model.ShapeDef) -> _Converter | None:
    if shape.type == "timestamp":
        return _to_datetime
    if shape.type == "structure":
        members = [
            (member, converter)
            for member, ref in shape.members.items()
            if (converter := _converter(ref.shape)) is not None
        ]
        if not members:
            return None

        def convert_structure(value: dict[str, Any]) -> dict[str, Any]:
            for member, convert in members:
                if member in value:
                    value[member] = convert(value[member])
            return value

        return convert_structure
    if shape.type == "list" and shape.member is not None:
        element = _converter(shape.member.shape)
        if element is None:
            return None
        convert_element = element
        return lambda value: [convert_element(item) for item in value]
    if shape.type == "map" and shape.value is not None:
        entry = _converter(shape.value.shape)
        if entry is None:
            return None
        convert_entry = entry
        return lambda value: {key: convert_entry(item) for key, item in value.items()}
    return None
