"""The grants of one key, held by its actor (the only writer of its grants).

Grants take effect as soon as CreateGrant returns (there is no eventual consistency here), so
a grant token only needs to be well formed. ``allows`` is on the hot path: it looks the
caller up in indexes by grantee (its ARN, its role for an assumed-role session, its account)
and costs a few dictionary lookups when no grant names the caller.

Who a grant names (as grantee or retiring principal), as AWS decides it:

* the principal itself (user, role, session or account root ARN);
* an assumed-role session of a named role (by the role's ARN with its path when the caller
  carries it, else by account and role name);
* any principal of a named account (``arn:aws:iam::<account>:root``), when that principal's
  IAM policies allow the operation on the key: the account delegates, as with key policies.
"""

from __future__ import annotations

import bisect
import builtins
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kms_actors.domain.grants import (
    CONTEXT_OPERATIONS,
    Pairs,
    account_of,
    at_least_as_strict,
    check_constraints,
    check_grant_id,
    check_operations,
    check_principal,
    check_tokens,
    constraints_hold,
    decode_marker,
    encode_marker,
    encode_token,
    iam_verdict,
    names_caller,
    new_grant_id,
    pairs,
    role_of,
)
from kms_actors.domain.policy import identify
from kms_actors.domain.principal import Caller
from kms_actors.domain.records import GrantRecord, KeyRecord
from kms_actors.errors import AccessDeniedException, LimitExceededException, NotFoundException
from kms_actors.keys.messages import CreateGrant, ListGrants

MAX_GRANTS_PER_KEY = 50_000
MAX_LIST_LIMIT = 100  # ListGrants answers at most 100 grants per page, as AWS


class _Grant:
    """One grant, compiled for matching."""

    __slots__ = ("equals", "operations", "order", "record", "subset")

    def __init__(self, record: GrantRecord) -> None:
        self.record = record
        self.operations = frozenset(record.operations)
        self.equals: Pairs | None = (
            pairs(record.encryption_context_equals) if record.encryption_context_equals else None
        )
        self.subset: Pairs | None = (
            pairs(record.encryption_context_subset) if record.encryption_context_subset else None
        )
        self.order = (record.creation_date, record.grant_id)


def _order(grant: _Grant) -> tuple[float, str]:
    return grant.order


class GrantBook:
    """The grants of one key: the decisions they allow and the changes the actor asks for."""

    def __init__(
        self,
        key: KeyRecord,
        records: Sequence[GrantRecord],
        store: Any,
        clock: Any,
        *,
        max_grants: int = MAX_GRANTS_PER_KEY,
    ) -> None:
        self._key = key
        self._store = store
        self._clock = clock
        self._max_grants = max_grants
        self._by_id: dict[str, _Grant] = {}
        self._sorted: list[_Grant] = []  # by (creation_date, grant_id): creation order
        self._by_arn: dict[str, list[_Grant]] = {}  # grantee user/role/session ARN
        self._by_role: dict[tuple[str, str], list[_Grant]] = {}  # (account, role) of a role
        self._by_account: dict[str, list[_Grant]] = {}  # grantee account root
        self._by_name: dict[str, list[_Grant]] = {}
        for record in sorted(records, key=lambda r: (r.creation_date, r.grant_id)):
            self._add(_Grant(record))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, grant_id: str) -> GrantRecord | None:
        """Return the grant, or None."""
        grant = self._by_id.get(grant_id)
        return None if grant is None else grant.record

    # --- decisions (hot path: pure, no awaits) ------------------------------------------------

    def allows(
        self,
        caller: Caller,
        operation: str,
        encryption_context: Mapping[str, str] | None,
        grant_tokens: Sequence[str],
    ) -> bool:
        """Say whether a grant lets ``caller`` run ``operation`` under this context.

        A grant's encryption context constraints apply only to operations that take an
        encryption context; a constrained grant still allows DescribeKey, CreateGrant or
        RetireGrant (AWS: "the constraint doesn't apply to these operations").

        Raises:
            InvalidGrantTokenException: A grant token is not well formed.
        """
        if grant_tokens:
            check_tokens(grant_tokens)
        if not self._by_id:
            return False
        request: tuple[Pairs, int] | None = None
        for grant, delegated in self._candidates(caller):
            if operation not in grant.operations:
                continue
            if operation in CONTEXT_OPERATIONS and (grant.equals or grant.subset):
                if request is None:
                    request = (pairs(encryption_context), len(encryption_context or ()))
                if not constraints_hold(grant.equals, grant.subset, *request):
                    continue
            if delegated and self._iam(caller, operation, encryption_context) != "Allow":
                continue
            return True
        return False

    def retirable_by(self, principal: str) -> list[GrantRecord]:
        """Return the grants whose retiring principal is exactly ``principal``, in order."""
        return [g.record for g in self._sorted if g.record.retiring_principal == principal]

    # --- commands (the actor awaits them; each persists before memory changes) ---------------

    async def create(
        self, key: KeyRecord, caller: Caller, request: CreateGrant, *, via_grant: bool = False
    ) -> tuple[str, str]:
        """Create a grant (or find the one a retry with the same Name made); return its id
        and a new token.

        ``via_grant`` says the caller's CreateGrant permission comes from a grant rather than
        from a policy: AWS then limits the new grant to operations of such a grant, with
        encryption context constraints at least as strict.

        Raises:
            ValidationException: A principal is not a principal ARN, an operation does not fit
                the key, or the constraints are invalid.
            AccessDeniedException: ``via_grant`` and no grant of the caller covers this one.
            LimitExceededException: The key has its maximum number of grants.
        """
        check_principal(request.grantee_principal, "GranteePrincipal")
        retiring = request.retiring_principal or ""
        if retiring:
            check_principal(retiring, "RetiringPrincipal")
        operations = tuple(dict.fromkeys(request.operations))
        check_operations(operations, key.key_spec, key.key_usage)
        equals = dict(request.encryption_context_equals or {}) or None
        subset = dict(request.encryption_context_subset or {}) or None
        check_constraints(equals, subset, key.key_spec)
        if via_grant:
            self._check_parent(key, caller, operations, equals, subset)
        name = request.name or ""
        for grant in self._by_name.get(name, ()) if name else ():
            record = grant.record
            if (
                record.grantee_principal == request.grantee_principal
                and record.retiring_principal == retiring
                and grant.operations == frozenset(operations)
                and record.encryption_context_equals == equals
                and record.encryption_context_subset == subset
            ):
                return record.grant_id, encode_token(key.arn, record.grant_id)
        if len(self._by_id) >= self._max_grants:
            raise LimitExceededException(
                f"The KMS key {key.arn} has {len(self._by_id)} grants, the most a key can have."
            )
        record = GrantRecord(
            key_id=key.key_id,
            grant_id=new_grant_id(),
            name=name,
            grantee_principal=request.grantee_principal,
            retiring_principal=retiring,
            issuing_account=f"arn:{key.arn.split(':')[1]}:iam::{key.account_id}:root",
            operations=operations,
            encryption_context_equals=equals,
            encryption_context_subset=subset,
            creation_date=self._next_creation_date(),
        )
        await self._store.grants.insert(record)  # committed before memory changes
        self._add(_Grant(record))
        return record.grant_id, encode_token(key.arn, record.grant_id)

    def list(self, key: KeyRecord, request: ListGrants) -> tuple[list[GrantRecord], str | None]:
        """Return a page of the key's grants in creation order, and the next marker (or None).

        Raises:
            InvalidMarkerException: The marker is not one this service gave out.
        """
        limit = max(1, min(request.limit, MAX_LIST_LIMIT))
        after = decode_marker(request.marker) if request.marker else None
        candidates: Sequence[_Grant]
        if request.grant_id is not None:
            grant = self._by_id.get(request.grant_id)
            candidates = [] if grant is None or (after and grant.order <= after) else [grant]
        elif after is not None:
            candidates = self._sorted[bisect.bisect_right(self._sorted, after, key=_order) :]
        else:
            candidates = self._sorted
        found: list[GrantRecord] = []
        for grant in candidates:
            principal = request.grantee_principal
            if principal is None or grant.record.grantee_principal == principal:
                found.append(grant.record)
                if len(found) > limit:
                    last = found[limit - 1]
                    return found[:limit], encode_marker(last.creation_date, last.grant_id)
        return found, None

    async def retire(
        self,
        key: KeyRecord,
        caller: Caller,
        grant_id: str,
        *,
        policy_allows: bool | None = None,
    ) -> None:
        """Retire a grant, if the caller may.

        May retire: the grant's retiring principal; its grantee if the grant allows
        RetireGrant; the account that issued it (the key's account). A principal of a named
        account counts when the account delegates kms:RetireGrant to it by IAM policy:
        ``policy_allows`` gives that verdict, or (None) the caller's identity policies are
        evaluated here. The key policy plays no part (AWS: kms:RetireGrant is not effective in
        a key policy), but an explicit Deny of kms:RetireGrant in an identity policy wins.

        Raises:
            InvalidGrantIdException: The grant id is malformed.
            NotFoundException: The key has no such grant.
            AccessDeniedException: The caller may not retire it.
        """
        grant = self._find(grant_id)
        verdict = self._iam(caller, "RetireGrant", None)
        delegated = verdict == "Allow" if policy_allows is None else policy_allows
        record = grant.record
        if verdict == "Deny" or not (
            names_caller(record.retiring_principal, caller, delegated)
            or (
                "RetireGrant" in grant.operations
                and names_caller(record.grantee_principal, caller, delegated)
            )
            or names_caller(record.issuing_account, caller, delegated)
        ):
            raise AccessDeniedException(
                f"User: {caller.arn} is not authorized to perform: kms:RetireGrant on resource: "
                f"{key.arn} because the grant does not let it retire the grant"
            )
        await self._delete(key, grant)

    async def revoke(self, key: KeyRecord, grant_id: str) -> None:
        """Revoke a grant (the key policy has allowed kms:RevokeGrant).

        Raises:
            InvalidGrantIdException: The grant id is malformed.
            NotFoundException: The key has no such grant.
        """
        await self._delete(key, self._find(grant_id))

    # --- helpers ------------------------------------------------------------------------------

    def _find(self, grant_id: str) -> _Grant:
        check_grant_id(grant_id)
        grant = self._by_id.get(grant_id)
        if grant is None:
            raise NotFoundException(f"Grant ID {grant_id} not found")
        return grant

    async def _delete(self, key: KeyRecord, grant: _Grant) -> None:
        await self._store.grants.delete(key.key_id, grant.record.grant_id)
        self._remove(grant)

    def _next_creation_date(self) -> float:
        """Return now, or just after the newest grant: creation dates never tie on one key,
        so (creation_date, grant_id) is creation order and paging markers survive restarts."""
        now = float(self._clock.now())
        if self._sorted and now <= self._sorted[-1].order[0]:
            now = math.nextafter(self._sorted[-1].order[0], math.inf)
        return now

    def _slots(self, grant: _Grant) -> Iterator[tuple[dict[Any, builtins.list[_Grant]], Any]]:
        """Yield (index, entry) for each index that lists the grant."""
        grantee = grant.record.grantee_principal
        if grantee.endswith(":root"):
            yield self._by_account, account_of(grantee)
        else:
            yield self._by_arn, grantee
            role = role_of(grantee)
            if role is not None:
                yield self._by_role, role
        if grant.record.name:
            yield self._by_name, grant.record.name

    def _add(self, grant: _Grant) -> None:
        self._by_id[grant.record.grant_id] = grant
        bisect.insort(self._sorted, grant, key=_order)
        for index, entry in self._slots(grant):
            index.setdefault(entry, []).append(grant)

    def _remove(self, grant: _Grant) -> None:
        del self._by_id[grant.record.grant_id]
        self._sorted.remove(grant)
        for index, entry in self._slots(grant):
            grants = index[entry]
            grants.remove(grant)
            if not grants:  # grantees churn: keep the indexes as small as the grants
                del index[entry]

    def _candidates(self, caller: Caller) -> Iterator[tuple[_Grant, bool]]:
        """Yield the grants whose grantee names the caller, and whether that needs the
        account's delegation (an IAM policy allowing the operation)."""
        for grant in self._by_arn.get(caller.arn, ()):
            yield grant, False
        who = identify(caller.arn, caller.account_id, caller.role_arn)
        if who.kind == "session":
            if who.role_arn_known:
                by_role: Sequence[_Grant] = self._by_arn.get(who.role_arn, ())
            else:
                by_role = self._by_role.get((account_of(caller.arn), who.name), ())
            for grant in by_role:
                yield grant, False
        for grant in self._by_account.get(account_of(caller.arn), ()):
            yield grant, not caller.is_root

    def _check_parent(
        self,
        key: KeyRecord,
        caller: Caller,
        operations: Sequence[str],
        equals: Mapping[str, str] | None,
        subset: Mapping[str, str] | None,
    ) -> None:
        child_equals = pairs(equals) if equals else None
        child_subset = pairs(subset) if subset else None
        for grant, delegated in self._candidates(caller):
            if (
                "CreateGrant" in grant.operations
                and grant.operations.issuperset(operations)
                and at_least_as_strict(child_equals, child_subset, grant.equals, grant.subset)
                and (not delegated or self._iam(caller, "CreateGrant", None) == "Allow")
            ):
                return
        raise AccessDeniedException(
            f"User: {caller.arn} is not authorized to perform: kms:CreateGrant on resource: "
            f"{key.arn} because the grant that allows kms:CreateGrant does not allow these "
            "operations or constraints"
        )

    def _iam(self, caller: Caller, operation: str, context: Mapping[str, str] | None) -> str:
        return iam_verdict(caller, operation, self._key, context, self._clock.now())
