"""Encryption context: the canonical byte form bound into ciphertexts as associated data."""

from __future__ import annotations

from collections.abc import Mapping

_EMPTY = b"\x00\x00\x00\x00"


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    """Return the unambiguous canonical encoding of an encryption context.

    Pairs are sorted by the UTF-8 bytes of their key; the encoding is a 4-byte big-endian pair
    count, then for each pair the 4-byte length and bytes of the key and of the value. Length
    prefixes make it injective: ``{"ab": "c"}`` and ``{"a": "bc"}`` encode differently, and an
    empty context encodes as a zero count.
    """
    if not context:
        return _EMPTY
    items = sorted((k.encode(), v.encode()) for k, v in context.items())
    parts = [len(items).to_bytes(4, "big")]
    for key, value in items:
        parts += (len(key).to_bytes(4, "big"), key, len(value).to_bytes(4, "big"), value)
    return b"".join(parts)
