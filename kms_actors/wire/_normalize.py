"""Rewrite a validated request that AWS accepts but ``msgspec.convert`` would not.

`kms_actors.wire._validate` marks such a request *dirty*; this slower, model-driven copy drops
null members, list elements and map values (AWS treats them as absent), truncates fractions
where integers belong (as AWS does), and applies boto3's conveniences for the embedded client:
a ``str`` blob is its UTF-8 bytes and a ``datetime`` timestamp is its epoch seconds (naive
means UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kms_actors.wire import _model


def normalize(shape_name: str, value: Any, *, blobs_are_base64: bool) -> Any:
    """Return a copy of validated ``value`` (of shape ``shape_name``) ready for conversion.

    Unknown structure members are dropped too; conversion would ignore them anyway.
    """
    shape = _model.shape(shape_name)
    kind = shape.type
    if kind == "structure":
        return {
            member: normalize(ref.shape, item, blobs_are_base64=blobs_are_base64)
            for member, ref in shape.members.items()
            if (item := value.get(member)) is not None
        }
    if kind == "list":
        assert shape.member is not None
        element = shape.member.shape
        return [
            normalize(element, item, blobs_are_base64=blobs_are_base64)
            for item in value
            if item is not None
        ]
    if kind == "map":
        assert shape.value is not None
        element = shape.value.shape
        return {
            key: normalize(element, item, blobs_are_base64=blobs_are_base64)
            for key, item in value.items()
            if item is not None
        }
    if kind in ("integer", "long") and isinstance(value, float):
        return int(value)
    if kind == "blob" and not blobs_are_base64 and isinstance(value, str):
        return value.encode()
    if kind == "timestamp" and isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return value
