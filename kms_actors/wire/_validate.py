"""Model-driven request validation, compiled once per shape.

Each shape of the model compiles, on first use, into a closure that walks a request in its
builtins form (dicts, lists, str, int, bytes or base64 str) and either raises
``SerializationException`` at the first value of the wrong type or records constraint failures;
``validate`` raises them as one ``ValidationException``. Checking an ``Encrypt`` request is a
handful of closure calls and comparisons.

Like AWS: a null member counts as absent, null list elements are skipped, unknown members are
ignored, and a float where an integer belongs is truncated. Those leniencies, plus boto3's
conveniences for the embedded client (``str`` for a blob, ``datetime`` for a timestamp), mark the
request *dirty*: it must go through `kms_actors.wire._normalize` before ``msgspec.convert``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from kms_actors.errors import SerializationException, ValidationException
from kms_actors.wire import _messages as messages
from kms_actors.wire import _model
from kms_actors.wire._model import ShapeDef
from kms_actors.wire._scalars import SCALAR_TYPES, Check, Context, Scalar, compile_scalar

_Display = Callable[[Any], str]


def _is_scalar(name: str) -> bool:
    return _model.shape(name).type in SCALAR_TYPES


def _display(shape: ShapeDef) -> _Display | None:
    """Return how a list or map of ``shape`` is echoed; None if it must not be (blobs, secrets)."""

    def echoes(ref: _model.ShapeRef | None) -> bool:
        if ref is None or not _is_scalar(ref.shape):
            return False
        target = _model.shape(ref.shape)
        return target.type != "blob" and not target.sensitive

    if shape.type == "list" and echoes(shape.member):
        return messages.java_list
    if shape.type == "map" and echoes(shape.key) and echoes(shape.value):
        return messages.java_map
    return None


def _check_size(
    shape: ShapeDef, value: Any, path: str, context: Context, display: _Display | None
) -> None:
    """Record a list's or map's entry count outside the shape's bounds."""
    size = len(value)
    if shape.min is not None and size < shape.min:
        context.fail(path, display(value) if display else None, messages.length_at_least(shape.min))
    if shape.max is not None and size > shape.max:
        context.fail(path, display(value) if display else None, messages.length_at_most(shape.max))


def _compile_scalar_list(shape: ShapeDef, element: Scalar) -> Check:
    # Coral reports failing elements once for the whole list, listing every element rule.
    sized = shape.min is not None or shape.max is not None
    display = _display(shape)
    rule = messages.nested("Member", element.declared)
    measure, ok = element.measure, element.ok

    def check_scalar_list(value: Any, path: str, context: Context) -> None:
        if not isinstance(value, list | tuple):
            raise SerializationException(messages.mismatch(value, "list"))
        if sized:
            _check_size(shape, value, path, context, display)
        failed = False
        for item in value:
            if item is None:
                context.dirty = True
                continue
            measured = measure(item, context)
            if ok is not None and not ok(measured):
                failed = True
        if failed:
            context.fail(path, display(value) if display else None, rule)

    return check_scalar_list


def _compile_list(shape: ShapeDef) -> Check:
    assert shape.member is not None
    if _is_scalar(shape.member.shape):
        return _compile_scalar_list(shape, _scalar(shape.member.shape))
    sized = shape.min is not None or shape.max is not None
    check_element = _check(shape.member.shape)

    def check_list(value: Any, path: str, context: Context) -> None:
        if not isinstance(value, list | tuple):
            raise SerializationException(messages.mismatch(value, "list"))
        if sized:
            _check_size(shape, value, path, context, None)
        for index, item in enumerate(value, 1):
            if item is None:
                context.dirty = True
                continue
            check_element(item, f"{path}.{index}.member", context)

    return check_list


def _compile_map(shape: ShapeDef) -> Check:
    # Coral reports failing keys once and failing values once, keys first, listing every rule.
    assert shape.key is not None and shape.value is not None
    sized = shape.min is not None or shape.max is not None
    display = _display(shape)
    key = _scalar(shape.key.shape)
    key_rule = messages.nested("Map keys", key.declared)
    element = _scalar(shape.value.shape) if _is_scalar(shape.value.shape) else None
    value_rule = messages.nested("Map value", element.declared) if element else ""
    check_value = None if element else _check(shape.value.shape)
    plain = key.plain_string and element is not None and element.plain_string

    def check_map(value: Any, path: str, context: Context) -> None:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise SerializationException(messages.mismatch(value, "map"))
        if sized:
            _check_size(shape, value, path, context, display)
        if plain:  # e.g. an encryption context: only types to check.
            for entry_key, entry in value.items():
                if type(entry_key) is not str or type(entry) is not str:
                    break
            else:
                return
        keys_failed = values_failed = False
        for entry_key, entry in value.items():
            measured = key.measure(entry_key, context)
            if key.ok is not None and not key.ok(measured):
                keys_failed = True
            if entry is None:
                context.dirty = True
            elif element is not None:
                measured = element.measure(entry, context)
                if element.ok is not None and not element.ok(measured):
                    values_failed = True
            elif check_value is not None:
                check_value(entry, f"{path}.{entry_key}", context)
        shown = display(value) if display and (keys_failed or values_failed) else None
        if keys_failed:
            context.fail(path, shown, key_rule)
        if values_failed:
            context.fail(path, shown, value_rule)

    return check_map


def _compile_structure(shape: ShapeDef) -> Check:
    members = tuple(
        (member, member[:1].lower() + member[1:], member in shape.required, _check(ref.shape))
        for member, ref in shape.members.items()
    )

    def check_structure(value: Any, path: str, context: Context) -> None:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise SerializationException(messages.mismatch(value, "structure"))
        prefix = f"{path}." if path else ""
        for member, lower, required, check in members:
            item = value.get(member)
            if item is None:
                if required:
                    context.fail(prefix + lower, "null", messages.NOT_NULL)
                elif member in value:
                    context.dirty = True
                continue
            check(item, prefix + lower, context)

    return check_structure


_SCALARS: Final[dict[str, Scalar]] = {}
_CHECKS: Final[dict[str, Check]] = {}
_REQUESTS: Final[dict[str, Check]] = {}


def _scalar(name: str) -> Scalar:
    scalar = _SCALARS.get(name)
    if scalar is None:
        scalar = _SCALARS[name] = compile_scalar(_model.shape(name))
    return scalar


def _check(name: str) -> Check:
    """Return the compiled check of shape ``name``, compiling it on first use."""
    check = _CHECKS.get(name)
    if check is not None:
        return check
    # Until compiled, refer to the cache, so a recursive shape compiles without looping.
    _CHECKS[name] = lambda value, path, context: _CHECKS[name](value, path, context)
    shape = _model.shape(name)
    if shape.type == "structure":
        check = _compile_structure(shape)
    elif shape.type == "list":
        check = _compile_list(shape)
    elif shape.type == "map":
        check = _compile_map(shape)
    else:
        check = _scalar(name).check
    _CHECKS[name] = check
    return check


def check_request(operation: str, params: Mapping[str, Any], *, blobs_are_base64: bool) -> bool:
    """Validate a request and say whether it needs normalising before conversion.

    Returns:
        True if ``params`` holds nulls, float integers or boto3 conveniences that
        `kms_actors.wire._normalize.normalize` must rewrite before ``msgspec.convert``.

    Raises:
        UnknownOperationException: ``operation`` is not a KMS operation.
        SerializationException: A value has the wrong type, or a blob is not valid base64.
        ValidationException: Values break model constraints (all of them listed, up to ten).
    """
    check = _REQUESTS.get(operation)
    if check is None:
        check = _REQUESTS[operation] = _check(_model.operation(operation).input.shape)
    context = Context(blobs_are_base64)
    check(params, "", context)
    if context.failures:
        raise ValidationException(messages.summary(context.failures))
    return context.dirty


def validate(operation: str, params: Mapping[str, Any], *, blobs_are_base64: bool) -> None:
    """Validate a request in builtins form against the model, as AWS does.

    Args:
        operation: The operation name, e.g. ``"Encrypt"``.
        params: The request's members by their AWS names. From JSON, blobs are base64 strings
            (``blobs_are_base64=True``); from the embedded client they are bytes.
        blobs_are_base64: Whether blob members arrive base64-encoded.

    Raises:
        UnknownOperationException: ``operation`` is not a KMS operation.
        SerializationException: A value has the wrong type, or a blob is not valid base64.
        ValidationException: Values break model constraints (all of them listed, up to ten).
    """
    check_request(operation, params, blobs_are_base64=blobs_are_base64)
