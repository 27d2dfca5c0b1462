"""Random audit histories, and ``AuditFilter``'s meaning in plain Python, for the index tests:
every query must return what a scan of the records in seq order returns."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence

import msgspec

from kms_actors.audit._chain import chain_hash
from kms_actors.store import AuditFilter, AuditRecord, AuditStore

from .audit_support import (
    ACCOUNT,
    ALICE,
    BOB,
    KEY_ARN,
    KEY_ID,
    OTHER_ACCOUNT,
    OTHER_KEY_ARN,
    OTHER_KEY_ID,
    REGION,
    START,
)

ALIAS_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/test"
RESOURCE_SETS: tuple[tuple[str, ...], ...] = (
    (),
    (KEY_ARN, KEY_ID),
    (OTHER_KEY_ARN, OTHER_KEY_ID),
    (KEY_ARN, KEY_ID, ALIAS_ARN, "alias/test"),
    (KEY_ARN, OTHER_KEY_ARN, KEY_ID, OTHER_KEY_ID),
    (ALIAS_ARN, "alias/test"),
)
NAMES = (KEY_ARN, KEY_ID, OTHER_KEY_ARN, OTHER_KEY_ID, ALIAS_ARN, "alias/test", "alias/none")
OPERATIONS = ("Encrypt", "Decrypt", "DescribeKey", "CreateKey")
_EQUALS = ("account_id", "region", "principal_arn", "event_name", "event_id", "access_key_id")


class Ids:
    """Event ids as the service makes them (two sequences), with some odd ones mixed in."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.prefixes = [str(uuid.UUID(int=rng.getrandbits(128)))[:24] for _ in range(2)]
        self.counters = [rng.randrange(200, 300), rng.randrange(0, 10_000)]

    def __call__(self) -> str:
        roll = self.rng.random()
        if roll < 0.85:
            which = self.rng.randrange(2)
            self.counters[which] += 1
            return f"{self.prefixes[which]}{self.counters[which]:012x}"
        if roll < 0.95:
            return str(uuid.UUID(int=self.rng.getrandbits(128)))
        return self.rng.choice(("mine", ""))  # also repeated ids


def random_batch(
    rng: random.Random, ids: Ids, size: int, head: tuple[int, bytes]
) -> list[AuditRecord]:
    """Return ``size`` records after ``head``: times near seq order, now and then far off."""
    seq, prev = head
    records = []
    for _ in range(size):
        seq += 1
        resources = rng.choice(RESOURCE_SETS)
        event_json = b'{"seq": %d}' % seq
        record_hash = chain_hash(prev, event_json)
        jump = rng.choice((-100.0, 100.0)) if rng.random() < 0.03 else 0.0
        records.append(
            AuditRecord(
                seq=seq,
                event_time=START + seq / 2 + rng.uniform(-3, 3) + jump,
                event_json=event_json,
                account_id=rng.choice((ACCOUNT, ACCOUNT, OTHER_ACCOUNT)),
                region=REGION,
                event_name=rng.choice(OPERATIONS),
                event_id=ids(),
                read_only=rng.random() < 0.5,
                key_arn=next((name for name in resources if ":key/" in name), None),
                principal_arn=rng.choice((ALICE, BOB, None)),
                access_key_id=rng.choice(("AKIAALICE", None)),
                error_code=rng.choice((None, None, "AccessDeniedException")),
                prev_hash=prev,
                hash=record_hash,
                resources=resources,
            )
        )
        prev = record_hash
    return records


def matches(record: AuditRecord, where: AuditFilter) -> bool:
    """Say whether a record passes the filter: ``AuditFilter``'s meaning, in plain Python."""
    for column in _EQUALS:
        value = getattr(where, column)
        if value is not None and getattr(record, column) != value:
            return False
    checks = (
        where.resource is None or where.resource in record.resources,
        where.event_names is None or record.event_name in where.event_names,
        where.read_only is None or record.read_only == where.read_only,
        where.start is None or record.event_time >= where.start,
        where.end is None or record.event_time <= where.end,
        where.succeeded is None or (record.error_code is None) == where.succeeded,
        where.has_key is None or (record.key_arn is not None) == where.has_key,
    )
    return all(checks)


def random_filter(rng: random.Random, records: Sequence[AuditRecord]) -> AuditFilter:
    """Return a filter on one to three fields, most often with a resource, id or time."""
    sample = rng.choice(records)
    low = min(r.event_time for r in records) - 5
    high = max(r.event_time for r in records) + 5
    options: dict[str, Callable[[], object]] = {
        "resource": lambda: rng.choice(NAMES),
        # Stored ids, ids sharing a stored id's index key, and ids never seen.
        "event_id": lambda: rng.choice(
            (sample.event_id, sample.event_id[:-1] + "z", "unknown", str(uuid.uuid4()))
        ),
        "start": lambda: rng.uniform(low, high),
        "end": lambda: rng.uniform(low, high),
        "account_id": lambda: rng.choice((ACCOUNT, OTHER_ACCOUNT)),
        "event_name": lambda: rng.choice(OPERATIONS),
        "event_names": lambda: tuple(rng.sample(OPERATIONS, 2)),
        "read_only": lambda: rng.random() < 0.5,
        "succeeded": lambda: rng.random() < 0.5,
        "has_key": lambda: rng.random() < 0.5,
        "principal_arn": lambda: rng.choice((ALICE, BOB)),
    }
    first = rng.choice(("resource", "resource", "event_id", "start", "end", "account_id"))
    fields = {first, *rng.sample(sorted(options), rng.randrange(3))}
    where = AuditFilter(**{name: options[name]() for name in fields})  # type: ignore[arg-type]
    if where.start is not None and where.end is not None and where.start > where.end:
        where = msgspec.structs.replace(where, start=where.end, end=where.start)
    return where


async def pages(
    store: AuditStore, where: AuditFilter, *, limit: int, descending: bool
) -> tuple[list[int], int]:
    """Return the seqs of every page of a query, in order, and how many pages it took."""
    found: list[int] = []
    after: int | None = None
    count = 0
    while True:
        page = await store.query(where, limit=limit, after_seq=after, descending=descending)
        count += 1
        found += [record.seq for record in page]
        if len(page) < limit:
            return found, count
        after = page[-1].seq


async def check_queries(
    store: AuditStore, records: Sequence[AuditRecord], rng: random.Random, rounds: int
) -> None:
    """Compare random queries, every page both ways, and cut points with a scan."""
    for _ in range(rounds):
        where = random_filter(rng, records)
        expected = [r.seq for r in records if matches(r, where)]
        limit = rng.choice((3, 7, 25, 1000))
        for descending in (True, False):
            found, count = await pages(store, where, limit=limit, descending=descending)
            assert found == (expected[::-1] if descending else expected), where
            assert count == len(expected) // limit + 1
        before = rng.uniform(records[0].event_time - 5, records[-1].event_time + 5)
        late = [r.seq for r in records if r.event_time >= before]
        assert await store.cut_seq(before) == (min(late) - 1 if late else records[-1].seq)


async def append_random(
    store: AuditStore, rng: random.Random, ids: Ids, count: int, head: tuple[int, bytes]
) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    while len(records) < count:
        batch = random_batch(rng, ids, rng.choice((1, 1, 2, 3, 5, 8, 17, 32, 40)), head)
        await store.append(batch)
        records += batch
        head = (batch[-1].seq, batch[-1].hash)
    return records


def expected_index(batches: Sequence[Sequence[AuditRecord]]) -> set[tuple[str, int, int]]:
    """Each batch's names: its records' resources (a key ARN as its key id, which the writer
    lists too) and ``event:`` + the id's first 34 chars."""
    entries = set()
    for batch in batches:
        first, last = batch[0].seq, batch[-1].seq
        for record in batch:
            entries |= {(_filed_as(name), first, last) for name in record.resources}
            entries.add(("event:" + record.event_id[:34], first, last))
    return entries


def _filed_as(name: str) -> str:
    if name.startswith("arn:") and ":key/" in name[4:]:
        return name.split(":key/", 1)[1]
    return name
