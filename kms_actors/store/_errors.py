"""Exceptions the store raises instead of leaking ``sqlite3`` errors to other packages.

No other package may import ``sqlite3``, so every failure a caller is expected to handle has
a store exception here. Anything else (disk full, a corrupt file) propagates unchanged and
ends up as ``KMSInternalException`` at the edge.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the errors the store raises on purpose."""


class StoreVersionError(StoreError, ValueError):
    """The database was written by a newer schema than this code knows; it is never downgraded."""


class KeyExists(StoreError):
    """A key with this key id (or ARN) is already stored."""


class MaterialExists(StoreError):
    """This key already has a material of that version, or the material id is taken."""


class AliasExists(StoreError):
    """An alias of this name already exists in the account and region."""


class GrantExists(StoreError):
    """A grant with this grant id is already stored."""
