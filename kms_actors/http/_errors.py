"""Errors as AWS JSON 1.1 services send them: ``{"__type": ..., "message": ...}``."""

from __future__ import annotations

import msgspec

from kms_actors.errors import KmsError

_ENCODER = msgspec.json.Encoder()
JSON_11 = "application/x-amz-json-1.1"


def error_body(error: KmsError) -> bytes:
    """Return the JSON body AWS sends for ``error``."""
    if error.message:
        return _ENCODER.encode({"__type": error.code, "message": error.message})
    return _ENCODER.encode({"__type": error.code})
