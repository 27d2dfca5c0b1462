"""GrantBook commands: create (validation, Name idempotency, limits), list, retire, revoke."""

from __future__ import annotations

import msgspec
import pytest

from kms_actors.domain.clock import FakeClock
from kms_actors.domain.grants import decode_token, encode_marker
from kms_actors.domain.records import GrantRecord
from kms_actors.errors import (
    AccessDeniedException,
    InvalidGrantIdException,
    InvalidMarkerException,
    KmsError,
    LimitExceededException,
    NotFoundException,
    ValidationException,
)
from kms_actors.keys.grants import MAX_GRANTS_PER_KEY, GrantBook
from kms_actors.keys.messages import ListGrants

from ._support import (
    ACCT,
    ALICE,
    BOB,
    CAROL,
    KEY,
    KEY_ARN,
    KEY_ID,
    OPS_ROLE,
    OPS_SESSION,
    OTHER_ROOT,
    ROOT,
    FakeStore,
    caller,
    identity,
    make_key,
    new_book,
    request,
)

pytestmark = pytest.mark.anyio

ADMIN = caller(ROOT)


async def test_create_persists_and_returns_id_and_token() -> None:
    store, clock = FakeStore(), FakeClock()
    book = new_book(store=store, clock=clock)
    grant_id, token = await book.create(
        KEY, ADMIN, request(ALICE, "Decrypt", "Encrypt", "Decrypt", retiring_principal=BOB)
    )
    assert len(grant_id) == 64 and int(grant_id, 16) >= 0
    parts = decode_token(token)
    assert (parts.key_arn, parts.key_id, parts.grant_id) == (KEY_ARN, KEY_ID, grant_id)
    record = store.grants.rows[grant_id]
    assert record == GrantRecord(
        key_id=KEY_ID,
        grant_id=grant_id,
        grantee_principal=ALICE,
        retiring_principal=BOB,
        issuing_account=ROOT,
        operations=("Decrypt", "Encrypt"),
        creation_date=clock.now(),
    )
    assert book.get(grant_id) == record
    assert len(book) == 1


async def test_a_failed_write_leaves_the_book_unchanged() -> None:
    store = FakeStore()
    book = new_book(store=store)
    store.grants.fail = OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        await book.create(KEY, ADMIN, request(ALICE, "Decrypt"))
    assert len(book) == 0
    assert not book.allows(caller(ALICE), "Decrypt", None, ())

    grant_id, _ = await book.create(KEY, ADMIN, request(ALICE, "Decrypt"))
    store.grants.fail = OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        await book.revoke(KEY, grant_id)
    assert book.allows(caller(ALICE), "Decrypt", None, ())
    assert grant_id in store.grants.rows


async def test_same_name_and_parameters_is_a_retry() -> None:
    store = FakeStore()
    book = new_book(store=store)
    params = {"name": "retry-me", "retiring_principal": BOB}
    first = await book.create(
        KEY,
        ADMIN,
        request(ALICE, "Decrypt", "Encrypt", encryption_context_subset={"a": "1"}, **params),
    )
    again = await book.create(
        KEY,
        ADMIN,
        request(ALICE, "Encrypt", "Decrypt", encryption_context_subset={"a": "1"}, **params),
    )
    assert again[0] == first[0]
    assert again[1] != first[1]  # a new token every call
    assert decode_token(again[1]).grant_id == first[0]
    assert len(book) == 1 and len(store.grants.rows) == 1
    assert book.get(first[0]) is not None and book.get(first[0]).name == "retry-me"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "change",
    [
        {"grantee_principal": BOB},
        {"retiring_principal": None},
        {"operations": ("Decrypt",)},
        {"encryption_context_subset": {"a": "2"}},
        {"encryption_context_subset": None, "encryption_context_equals": {"a": "1"}},
        {"name": "another-name"},
    ],
)
async def test_same_name_with_other_parameters_is_a_new_grant(change: dict[str, object]) -> None:
    book = new_book()
    original = request(
        ALICE,
        "Decrypt",
        "Encrypt",
        name="n",
        retiring_principal=BOB,
        encryption_context_subset={"a": "1"},
    )
    first, _ = await book.create(KEY, ADMIN, original)
    second, _ = await book.create(KEY, ADMIN, msgspec.structs.replace(original, **change))
    assert second != first
    assert len(book) == 2


async def test_without_a_name_every_call_makes_a_grant() -> None:
    book = new_book()
    ids = {(await book.create(KEY, ADMIN, request(ALICE, "Decrypt")))[0] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (request("alice", "Decrypt"), "GranteePrincipal"),
        (request(ALICE, "Decrypt", retiring_principal="*"), "RetiringPrincipal"),
        (request(ALICE, "Decrypt", "Sign"), "Sign"),
        (request(ALICE, "Decrypt", "GetPublicKey"), "GetPublicKey"),
        (request(ALICE), "at least one"),
        (
            request(
                ALICE,
                "Decrypt",
                encryption_context_equals={"a": "1"},
                encryption_context_subset={"b": "2"},
            ),
            "not both",
        ),
        (
            request(ALICE, "Decrypt", encryption_context_subset={f"k{i}": "v" for i in range(9)}),
            "at most 8",
        ),
    ],
)
async def test_invalid_requests_are_refused(message: object, words: str) -> None:
    store = FakeStore()
    book = new_book(store=store)
    with pytest.raises(ValidationException, match=words):
        await book.create(KEY, ADMIN, message)  # type: ignore[arg-type]
    assert len(book) == 0 and not store.grants.rows


async def test_asymmetric_key_grants() -> None:
    rsa = make_key(key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT")
    book = new_book(key=rsa)
    await book.create(rsa, ADMIN, request(ALICE, "Decrypt", "GetPublicKey"))
    with pytest.raises(ValidationException, match="GenerateDataKey"):
        await book.create(rsa, ADMIN, request(ALICE, "GenerateDataKey"))
    with pytest.raises(ValidationException, match="RSA_2048"):
        await book.create(
            rsa, ADMIN, request(ALICE, "Decrypt", encryption_context_equals={"a": "1"})
        )


async def test_empty_constraints_are_no_constraints() -> None:
    store = FakeStore()
    book = new_book(store=store)
    grant_id, _ = await book.create(
        KEY, ADMIN, request(ALICE, "Decrypt", encryption_context_equals={})
    )
    assert store.grants.rows[grant_id].encryption_context_equals is None
    assert book.allows(caller(ALICE), "Decrypt", {"any": "thing"}, ())


async def test_grant_limit() -> None:
    book = new_book(max_grants=3)
    ids = [
        (await book.create(KEY, ADMIN, request(ALICE, "Decrypt", name=f"g{i}")))[0]
        for i in range(3)
    ]
    with pytest.raises(LimitExceededException, match=KEY_ARN):
        await book.create(KEY, ADMIN, request(BOB, "Decrypt"))
    # A retry of an existing grant is not a new grant.
    again, _ = await book.create(KEY, ADMIN, request(ALICE, "Decrypt", name="g1"))
    assert again == ids[1]
    await book.revoke(KEY, ids[0])
    await book.create(KEY, ADMIN, request(BOB, "Decrypt"))
    assert len(book) == 3


async def test_default_limit_is_50000_grants_per_key() -> None:
    records = [
        GrantRecord(
            key_id=KEY_ID,
            grant_id=f"{n:064x}",
            grantee_principal=ALICE,
            issuing_account=ROOT,
            operations=("Decrypt",),
            creation_date=1_600_000_000.0 + n,
        )
        for n in range(MAX_GRANTS_PER_KEY)
    ]
    book = new_book(records)
    assert len(book) == 50_000
    with pytest.raises(LimitExceededException):
        await book.create(KEY, ADMIN, request(BOB, "Decrypt"))
    assert book.allows(caller(ALICE), "Decrypt", None, ())


# --- listing --------------------------------------------------------------------------------


async def _book_of(count: int, *, store: FakeStore | None = None) -> tuple[GrantBook, list[str]]:
    book = new_book(store=store)  # the clock never moves: creation dates must still order
    ids = []
    for n in range(count):
        grantee = ALICE if n % 2 == 0 else BOB
        ids.append((await book.create(KEY, ADMIN, request(grantee, "Decrypt")))[0])
    return book, ids


def _pages(book: GrantBook, **filters: object) -> list[list[str]]:
    pages: list[list[str]] = []
    marker: str | None = None
    while True:
        records, marker = book.list(KEY, ListGrants(marker=marker, **filters))  # type: ignore[arg-type]
        pages.append([r.grant_id for r in records])
        if marker is None:
            return pages


async def test_list_is_in_creation_order_and_pages() -> None:
    book, ids = await _book_of(7)
    assert _pages(book, limit=3) == [ids[0:3], ids[3:6], ids[6:7]]
    assert _pages(book, limit=7) == [ids]
    assert _pages(book) == [ids]
    dates = [r.creation_date for r in book.list(KEY, ListGrants())[0]]
    assert dates == sorted(dates) and len(set(dates)) == 7


async def test_list_filters() -> None:
    book, ids = await _book_of(7)
    assert _pages(book, limit=2, grantee_principal=BOB) == [[ids[1], ids[3]], [ids[5]]]
    assert _pages(book, grant_id=ids[4]) == [[ids[4]]]
    assert _pages(book, grant_id=ids[4], grantee_principal=ALICE) == [[ids[4]]]
    assert _pages(book, grant_id=ids[4], grantee_principal=BOB) == [[]]
    assert _pages(book, grant_id="f" * 64) == [[]]
    after_first = encode_marker(*_order_of(book, ids[0]))
    records, _ = book.list(KEY, ListGrants(grant_id=ids[0], marker=after_first))
    assert records == []


def _order_of(book: GrantBook, grant_id: str) -> tuple[float, str]:
    record = book.get(grant_id)
    assert record is not None
    return record.creation_date, record.grant_id


async def test_list_limit_is_at_most_100() -> None:
    book, ids = await _book_of(101)
    records, marker = book.list(KEY, ListGrants(limit=1000))
    assert [r.grant_id for r in records] == ids[:100]
    assert marker is not None


async def test_markers_survive_deletion_and_restart() -> None:
    store = FakeStore()
    book, ids = await _book_of(6, store=store)
    first_page, marker = book.list(KEY, ListGrants(limit=2))
    assert [r.grant_id for r in first_page] == ids[:2]
    await book.revoke(KEY, ids[1])  # the grant the marker names
    assert [r.grant_id for r in book.list(KEY, ListGrants(limit=2, marker=marker))[0]] == ids[2:4]
    restarted = new_book(list(store.grants.rows.values()))
    assert [r.grant_id for r in restarted.list(KEY, ListGrants(limit=2, marker=marker))[0]] == ids[
        2:4
    ]
    assert restarted.list(KEY, ListGrants())[0] == book.list(KEY, ListGrants())[0]


async def test_creation_dates_follow_the_clock() -> None:
    clock = FakeClock()
    book = new_book(clock=clock)
    first, _ = await book.create(KEY, ADMIN, request(ALICE, "Decrypt"))
    clock.advance(10)
    second, _ = await book.create(KEY, ADMIN, request(ALICE, "Decrypt"))
    assert book.get(second).creation_date == clock.now()  # type: ignore[union-attr]
    assert book.get(first).creation_date == clock.now() - 10  # type: ignore[union-attr]


@pytest.mark.parametrize("marker", ["garbage", encode_marker(1.0, "a" * 64)[:-2] + "!!"])
async def test_bad_marker(marker: str) -> None:
    book, _ = await _book_of(2)
    with pytest.raises(InvalidMarkerException):
        book.list(KEY, ListGrants(marker=marker))


async def test_retirable_by() -> None:
    book = new_book()
    one, _ = await book.create(KEY, ADMIN, request(ALICE, "Decrypt", retiring_principal=BOB))
    await book.create(KEY, ADMIN, request(ALICE, "Decrypt", retiring_principal=ROOT))
    three, _ = await book.create(KEY, ADMIN, request(CAROL, "Decrypt", retiring_principal=BOB))
    assert [r.grant_id for r in book.retirable_by(BOB)] == [one, three]
    assert book.retirable_by(CAROL) == []


# --- retiring and revoking ------------------------------------------------------------------


async def _retire(grant: dict[str, object], who: object, **options: object) -> KmsError | None:
    """Create a grant from ``grant`` fields, have ``who`` retire it, return the error if any."""
    store = FakeStore()
    book = new_book(store=store)
    fields = dict(grant)
    grantee = str(fields.pop("grantee", ALICE))
    operations: tuple[str, ...] = fields.pop("operations", ("Decrypt",))  # type: ignore[assignment]
    grant_id, _ = await book.create(KEY, ADMIN, request(grantee, *operations, **fields))
    try:
        await book.retire(KEY, who, grant_id, **options)  # type: ignore[arg-type]
    except KmsError as error:
        assert book.get(grant_id) is not None and grant_id in store.grants.rows
        return error
    assert book.get(grant_id) is None and grant_id not in store.grants.rows
    return None


ALLOW_RETIRE = identity("kms:RetireGrant")
DENY_RETIRE = identity("kms:RetireGrant", effect="Deny")


@pytest.mark.parametrize(
    ("grant", "who", "options"),
    [
        ({"retiring_principal": BOB}, caller(BOB), {}),
        ({"retiring_principal": OPS_ROLE}, caller(OPS_SESSION), {}),
        ({"operations": ("Decrypt", "RetireGrant")}, caller(ALICE), {}),
        ({"grantee": OPS_ROLE, "operations": ("RetireGrant",)}, caller(OPS_SESSION), {}),
        ({}, caller(ROOT), {}),  # the issuing account
        ({}, caller(BOB, ALLOW_RETIRE), {}),  # the issuing account delegates to BOB
        ({"retiring_principal": OTHER_ROOT}, caller(OTHER_ROOT), {}),
        ({"retiring_principal": OTHER_ROOT}, caller(CAROL, ALLOW_RETIRE), {}),
        ({}, caller(BOB), {"policy_allows": True}),
    ],
    ids=[
        "retiring-principal",
        "retiring-role-session",
        "grantee-with-RetireGrant",
        "grantee-role-session",
        "issuing-account-root",
        "issuing-account-delegates",
        "retiring-account-root",
        "retiring-account-delegates",
        "policy-allows-flag",
    ],
)
async def test_who_may_retire(
    grant: dict[str, object], who: object, options: dict[str, object]
) -> None:
    assert await _retire(grant, who, **options) is None


@pytest.mark.parametrize(
    ("grant", "who", "options"),
    [
        ({}, caller(ALICE), {}),  # a grantee without RetireGrant
        ({"retiring_principal": BOB}, caller(CAROL), {}),
        ({}, caller(BOB), {}),
        ({}, caller(CAROL, ALLOW_RETIRE), {}),  # delegation works only within the account
        ({"retiring_principal": BOB}, caller(BOB, DENY_RETIRE), {}),  # an explicit Deny wins
        ({}, caller(ROOT, DENY_RETIRE), {}),
        ({}, caller(BOB, ALLOW_RETIRE), {"policy_allows": False}),
        ({"retiring_principal": OPS_ROLE}, caller(f"arn:aws:sts::{ACCT}:assumed-role/X/s"), {}),
    ],
    ids=[
        "grantee-without-RetireGrant",
        "stranger",
        "same-account-without-delegation",
        "other-account-with-iam",
        "deny-beats-retiring-principal",
        "deny-beats-root",
        "policy-allows-false",
        "other-role-session",
    ],
)
async def test_who_may_not_retire(
    grant: dict[str, object], who: object, options: dict[str, object]
) -> None:
    error = await _retire(grant, who, **options)
    assert isinstance(error, AccessDeniedException)
    assert "kms:RetireGrant" in error.message and KEY_ARN in error.message


async def test_retire_and_revoke_unknown_or_malformed_grants() -> None:
    book = new_book()
    with pytest.raises(NotFoundException, match="f" * 64):
        await book.retire(KEY, ADMIN, "f" * 64)
    with pytest.raises(NotFoundException):
        await book.revoke(KEY, "f" * 64)
    with pytest.raises(InvalidGrantIdException):
        await book.retire(KEY, ADMIN, "not-a-grant-id")
    with pytest.raises(InvalidGrantIdException):
        await book.revoke(KEY, "F" * 64)


async def test_revoke_deletes_from_store_and_book() -> None:
    store = FakeStore()
    book = new_book(store=store)
    grant_id, _ = await book.create(KEY, ADMIN, request(ALICE, "Decrypt", name="n"))
    await book.revoke(KEY, grant_id)
    assert not store.grants.rows and len(book) == 0
    assert book.list(KEY, ListGrants())[0] == []
    again, _ = await book.create(KEY, ADMIN, request(ALICE, "Decrypt", name="n"))
    assert again != grant_id


# --- CreateGrant permission that comes from a grant -----------------------------------------


async def _parent_book() -> GrantBook:
    book = new_book()
    await book.create(
        KEY,
        ADMIN,
        request(ALICE, "Decrypt", "Encrypt", "CreateGrant", encryption_context_subset={"a": "1"}),
    )
    await book.create(KEY, ADMIN, request(OTHER_ROOT, "Decrypt", "CreateGrant"))
    return book


@pytest.mark.parametrize(
    "child",
    [
        request(BOB, "Decrypt", encryption_context_subset={"a": "1"}),
        request(BOB, "Decrypt", "CreateGrant", encryption_context_subset={"A": "1", "b": "2"}),
        request(BOB, "Encrypt", encryption_context_equals={"a": "1"}),
    ],
)
async def test_grant_derived_create_grant_within_the_parent(child: object) -> None:
    book = await _parent_book()
    await book.create(KEY, caller(ALICE), child, via_grant=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "child",
    [
        request(BOB, "Decrypt"),  # drops the constraint
        request(BOB, "GenerateDataKey", encryption_context_subset={"a": "1"}),  # new operation
        request(BOB, "Decrypt", encryption_context_subset={"b": "2"}),
        request(BOB, "Decrypt", "DescribeKey", encryption_context_subset={"a": "1"}),
    ],
)
async def test_grant_derived_create_grant_beyond_the_parent(child: object) -> None:
    book = await _parent_book()
    with pytest.raises(AccessDeniedException, match="kms:CreateGrant"):
        await book.create(KEY, caller(ALICE), child, via_grant=True)  # type: ignore[arg-type]
    assert len(book) == 2


async def test_grant_derived_create_grant_for_an_account_needs_delegation() -> None:
    book = await _parent_book()
    child = request(BOB, "Decrypt")
    with pytest.raises(AccessDeniedException):
        await book.create(KEY, caller(CAROL), child, via_grant=True)
    await book.create(KEY, caller(CAROL, identity("kms:CreateGrant")), child, via_grant=True)
    await book.create(KEY, caller(OTHER_ROOT), child, via_grant=True)
    with pytest.raises(AccessDeniedException):
        await book.create(KEY, caller(BOB), child, via_grant=True)
