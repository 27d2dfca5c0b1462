"""Key identifiers, the canonical encryption context, and the fake clock."""

from __future__ import annotations

import random
import uuid

import anyio
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kms_actors.domain.clock import FakeClock
from kms_actors.domain.context import canonical_context
from kms_actors.domain.identifiers import (
    KeyRef,
    alias_arn,
    display_arn,
    is_key_id,
    key_arn,
    key_not_found,
    new_key_id,
    parse_key_ref,
)
from kms_actors.errors import NotFoundException
from tests.domain.conftest import START

ACCOUNT = "111122223333"
REGION = "us-east-2"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
MRK_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"

# --- Identifiers: the four KeyId forms of the AWS KMS developer guide ----------------------------


@pytest.mark.parametrize(
    ("given_id", "expected"),
    [
        pytest.param(KEY_ID, KeyRef("key", KEY_ID, ACCOUNT, REGION, KEY_ID), id="key-id"),
        pytest.param(MRK_ID, KeyRef("key", MRK_ID, ACCOUNT, REGION, MRK_ID), id="mrk-key-id"),
        pytest.param(
            f"arn:aws:kms:us-west-2:444455556666:key/{KEY_ID}",
            KeyRef(
                "key",
                KEY_ID,
                "444455556666",
                "us-west-2",
                f"arn:aws:kms:us-west-2:444455556666:key/{KEY_ID}",
            ),
            id="key-arn",
        ),
        pytest.param(
            f"arn:aws-cn:kms:cn-north-1:{ACCOUNT}:key/{MRK_ID}",
            KeyRef(
                "key",
                MRK_ID,
                ACCOUNT,
                "cn-north-1",
                f"arn:aws-cn:kms:cn-north-1:{ACCOUNT}:key/{MRK_ID}",
            ),
            id="key-arn-other-partition",
        ),
        pytest.param(
            "alias/ExampleAlias",
            KeyRef("alias", "alias/ExampleAlias", ACCOUNT, REGION, "alias/ExampleAlias"),
            id="alias-name",
        ),
        pytest.param(
            f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/ExampleAlias",
            KeyRef(
                "alias",
                "alias/ExampleAlias",
                ACCOUNT,
                REGION,
                f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/ExampleAlias",
            ),
            id="alias-arn",
        ),
    ],
)
def test_parse_key_ref(given_id: str, expected: KeyRef) -> None:
    assert parse_key_ref(given_id, ACCOUNT, REGION) == expected


@pytest.mark.parametrize(
    "given_id",
    [
        "1234abcd",
        "not-a-key",
        f"key/{KEY_ID}",
        f"{KEY_ID}x",
        f"x{KEY_ID}",
        "mrk-1234",
        f"{KEY_ID} ",
    ],
)
def test_an_invalid_key_id_is_not_found(given_id: str) -> None:
    with pytest.raises(NotFoundException) as raised:
        parse_key_ref(given_id, ACCOUNT, REGION)
    assert raised.value.message == f"Invalid keyId {given_id}"


def test_a_key_arn_with_an_invalid_key_id_is_not_found() -> None:
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/not-a-key"
    with pytest.raises(NotFoundException) as raised:
        parse_key_ref(arn, ACCOUNT, REGION)
    assert raised.value.message == f"Invalid keyId {arn}"


@pytest.mark.parametrize(
    "given_id",
    [
        f"arn:aws:s3:{REGION}:{ACCOUNT}:key/{KEY_ID}",
        f"arn:aws:kms:{REGION}:1234:key/{KEY_ID}",
        f"arn:aws:kms:{REGION}:{ACCOUNT}:grant/{KEY_ID}",
        "arn:",
    ],
)
def test_a_malformed_arn_is_not_found(given_id: str) -> None:
    with pytest.raises(NotFoundException) as raised:
        parse_key_ref(given_id, ACCOUNT, REGION)
    assert given_id in raised.value.message


def test_arns() -> None:
    assert key_arn(REGION, ACCOUNT, KEY_ID) == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
    assert alias_arn(REGION, ACCOUNT, "alias/a") == f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/a"
    assert key_arn("cn-north-1", ACCOUNT, KEY_ID, partition="aws-cn").startswith("arn:aws-cn:")


def test_parsing_a_displayed_arn_gives_the_same_key() -> None:
    for given_id in (KEY_ID, "alias/ExampleAlias"):
        ref = parse_key_ref(given_id, ACCOUNT, REGION)
        again = parse_key_ref(display_arn(ref), ACCOUNT, REGION)
        assert (again.kind, again.name, again.account_id, again.region) == (
            ref.kind,
            ref.name,
            ref.account_id,
            ref.region,
        )


def test_not_found_messages_are_awss() -> None:
    key = parse_key_ref(KEY_ID, ACCOUNT, REGION)
    alias = parse_key_ref("alias/missing", ACCOUNT, REGION)
    assert key_not_found(key).message == (
        f"Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}' does not exist"
    )
    assert key_not_found(alias).message == (
        f"Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/missing is not found."
    )


def test_new_key_ids_are_random_uuids() -> None:
    ids = {new_key_id() for _ in range(100)}
    assert len(ids) == 100
    for key_id in ids:
        assert is_key_id(key_id)
        assert uuid.UUID(key_id).version == 4
        assert str(uuid.UUID(key_id)) == key_id


# --- Encryption context ------------------------------------------------------------------------


def decode(encoded: bytes) -> list[tuple[bytes, bytes]]:
    """Parse the documented layout: a count, then length-prefixed key and value per pair."""

    def take(at: int, size: int) -> tuple[bytes, int]:
        part = encoded[at : at + size]
        assert len(part) == size, "truncated encoding"
        return part, at + size

    raw, at = take(0, 4)
    pairs: list[tuple[bytes, bytes]] = []
    for _ in range(int.from_bytes(raw, "big")):
        raw, at = take(at, 4)
        key, at = take(at, int.from_bytes(raw, "big"))
        raw, at = take(at, 4)
        value, at = take(at, int.from_bytes(raw, "big"))
        pairs.append((key, value))
    assert at == len(encoded), "trailing bytes"
    return pairs


contexts = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=6)


def test_empty_context_is_a_zero_count() -> None:
    assert canonical_context(None) == b"\x00\x00\x00\x00"
    assert canonical_context({}) == b"\x00\x00\x00\x00"


def test_context_layout() -> None:
    assert canonical_context({"b": "22", "a": "1"}) == (
        b"\x00\x00\x00\x02"
        + b"\x00\x00\x00\x01a\x00\x00\x00\x011"
        + b"\x00\x00\x00\x01b\x00\x00\x00\x0222"
    )


def test_lengths_count_utf8_bytes() -> None:
    assert decode(canonical_context({"é": "€"})) == [("é".encode(), "€".encode())]


def test_moving_characters_between_key_and_value_changes_the_encoding() -> None:
    assert canonical_context({"ab": "c"}) != canonical_context({"a": "bc"})
    assert canonical_context({"a": "b", "c": "d"}) != canonical_context({"a": "bcd"})
    assert canonical_context({"": "a"}) != canonical_context({"a": ""})


def test_pair_order_does_not_matter() -> None:
    forward = {"purpose": "backup", "department": "10103.0", "zone": "Zürich"}
    backward = dict(reversed(list(forward.items())))
    assert canonical_context(forward) == canonical_context(backward)


@given(contexts)
def test_context_decodes_back_to_itself_in_utf8_key_order(context: dict[str, str]) -> None:
    pairs = decode(canonical_context(context))
    assert {key.decode(): value.decode() for key, value in pairs} == context
    assert len(pairs) == len(context)
    keys = [key for key, _value in pairs]
    assert keys == sorted(keys)


@given(contexts, contexts)
def test_distinct_contexts_encode_differently(
    first: dict[str, str], second: dict[str, str]
) -> None:
    assume(first != second)
    assert canonical_context(first) != canonical_context(second)


@given(contexts, st.randoms(use_true_random=False))
def test_encoding_ignores_insertion_order(context: dict[str, str], rng: random.Random) -> None:
    items = list(context.items())
    rng.shuffle(items)
    shuffled = dict(items)
    assert canonical_context(shuffled) == canonical_context(context)


# --- Fake clock --------------------------------------------------------------------------------


def test_fake_clock_starts_where_told_and_moves_only_forward(clock: FakeClock) -> None:
    assert clock.now() == START
    clock.advance(2.5)
    assert clock.now() == START + 2.5
    clock.advance(0)
    assert clock.now() == START + 2.5
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    assert clock.now() == START + 2.5


@pytest.mark.anyio
async def test_sleep_until_wakes_when_advance_reaches_the_deadline(clock: FakeClock) -> None:
    woke: list[float] = []

    async def sleeper(deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append(clock.now())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper, START + 10)
            await anyio.wait_all_tasks_blocked()
            assert woke == []
            clock.advance(4)
            await anyio.wait_all_tasks_blocked()
            assert woke == []
            clock.advance(6)
    assert woke == [START + 10]


@pytest.mark.anyio
async def test_each_sleeper_wakes_at_its_own_deadline(clock: FakeClock) -> None:
    woke: list[str] = []

    async def sleeper(name: str, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append(name)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper, "late", START + 30)
            tg.start_soon(sleeper, "early", START + 10)
            await anyio.wait_all_tasks_blocked()
            clock.advance(15)
            await anyio.wait_all_tasks_blocked()
            assert woke == ["early"]
            clock.advance(100)
    assert woke == ["early", "late"]


@pytest.mark.anyio
async def test_sleep_until_a_past_deadline_returns_at_once(clock: FakeClock) -> None:
    with anyio.fail_after(5):
        await clock.sleep_until(START)
        await clock.sleep_until(START - 60)
    assert clock.now() == START
