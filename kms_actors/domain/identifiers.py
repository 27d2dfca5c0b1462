"""Key and alias identifiers: key id, key ARN, alias name and alias ARN, as AWS parses them."""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Literal

import msgspec

from kms_actors.errors import NotFoundException

_KEY_ID = re.compile(
    r"(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)
_ARN = re.compile(r"arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)")
ALIAS_PREFIX = "alias/"
AWS_ALIAS_PREFIX = "alias/aws/"


class KeyRef(msgspec.Struct, frozen=True):
    """A parsed KeyId parameter: a key id or alias name, and where it lives."""

    kind: Literal["key", "alias"]
    name: str  # key id, or alias name including "alias/"
    account_id: str
    region: str
    given: str  # the identifier as the caller wrote it


class UuidSequence:
    """UUID-shaped ids (request ids, event ids): a random prefix and a counter.

    Unique across processes (80 random bits per sequence) and ~10x cheaper than ``uuid4``;
    within a sequence they sort in issue order. Like a ``uuid4``, the version digit is 4 and
    the variant bits are RFC 4122's. ``prefix`` and ``at(n)`` let another process spell the
    ``n``-th id of this sequence (the audit writer names events this way).
    """

    __slots__ = ("_next", "prefix")

    def __init__(self) -> None:
        p = uuid.uuid4().hex  # already carries version 4 and the RFC 4122 variant
        self.prefix = f"{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:20]}-"
        self._next = itertools.count(1)

    def __call__(self) -> str:
        """Return the next id."""
        return f"{self.prefix}{next(self._next):012x}"


def sequence_id(prefix: str, number: int) -> str:
    """Return the ``number``-th id (from 1) of the ``UuidSequence`` with ``prefix``."""
    return f"{prefix}{number:012x}"


new_request_id = UuidSequence()


def new_key_id() -> str:
    """Return a fresh key id (a random UUID, as AWS uses for single-Region keys)."""
    return str(uuid.uuid4())


def key_arn(region: str, account_id: str, key_id: str, partition: str = "aws") -> str:
    """Return the ARN of a key."""
    return f"arn:{partition}:kms:{region}:{account_id}:key/{key_id}"


def alias_arn(region: str, account_id: str, alias_name: str, partition: str = "aws") -> str:
    """Return the ARN of an alias (``alias_name`` includes the ``alias/`` prefix)."""
    return f"arn:{partition}:kms:{region}:{account_id}:{alias_name}"


def is_key_id(value: str) -> bool:
    """Say whether ``value`` has the form of a key id."""
    return _KEY_ID.fullmatch(value) is not None


def parse_key_ref(value: str, account_id: str, region: str) -> KeyRef:
    """Parse a KeyId parameter (key id, key ARN, alias name or alias ARN).

    ARNs may name another account (resolved later against policies); an ARN for another
    region names a key that cannot be found from this region.

    Raises:
        NotFoundException: The identifier is not any of the four forms.
    """
    if value.startswith(ALIAS_PREFIX):
        return KeyRef("alias", value, account_id, region, value)
    if value.startswith("arn:"):
        match = _ARN.fullmatch(value)
        if match is None:
            raise NotFoundException(f"Invalid arn {value}")
        _partition, arn_region, arn_account, kind, rest = match.groups()
        if kind == "alias":
            return KeyRef("alias", ALIAS_PREFIX + rest, arn_account, arn_region, value)
        if not is_key_id(rest):
            raise NotFoundException(f"Invalid keyId {value}")
        return KeyRef("key", rest, arn_account, arn_region, value)
    if is_key_id(value):
        return KeyRef("key", value, account_id, region, value)
    raise NotFoundException(f"Invalid keyId {value}")


def display_arn(ref: KeyRef) -> str:
    """Return the ARN AWS names in a NotFoundException for ``ref``."""
    if ref.kind == "alias":
        return alias_arn(ref.region, ref.account_id, ref.name)
    return key_arn(ref.region, ref.account_id, ref.name)


def key_not_found(ref: KeyRef) -> NotFoundException:
    """Return AWS's NotFoundException for a key or alias that does not exist."""
    if ref.kind == "alias":
        return NotFoundException(f"Alias {display_arn(ref)} is not found.")
    return NotFoundException(f"Key '{display_arn(ref)}' does not exist")
