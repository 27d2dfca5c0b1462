"""The grants of one key, held by its actor (the only writer of its grants).

TODO(issue 5): the full implementation (store, creation, listing, retiring, revoking) is
being built; this skeleton holds the interface the key actor calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kms_actors.domain.principal import Caller
from kms_actors.domain.records import GrantRecord, KeyRecord


class GrantBook:
    """The grants of one key."""

    def __init__(
        self, key: KeyRecord, records: Sequence[GrantRecord], store: Any, clock: Any
    ) -> None:
        self._records = list(records)
        self._store = store
        self._clock = clock

    def __len__(self) -> int:
        return len(self._records)

    def allows(
        self,
        caller: Caller,
        operation: str,
        encryption_context: Mapping[str, str] | None,
        grant_tokens: Sequence[str],
    ) -> bool:
        """Say whether a grant lets ``caller`` run ``operation`` under this context."""
        return False
