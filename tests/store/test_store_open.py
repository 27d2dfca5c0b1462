"""Opening the store: files, pragmas, migrations, version checks and reopening."""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import stat

import msgspec
import pytest

from kms_actors.domain.records import KeyRecord
from kms_actors.store import DATABASE_NAME, Store, StoreVersionError, _migrations, open_store
from kms_actors.store._db import connect

from ._factories import make_alias, make_key, make_material, make_tags

pytestmark = pytest.mark.anyio


def _user_version(path: pathlib.Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


async def test_creates_private_directory_and_database(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    async with open_store(data_dir) as store:
        assert store.path == data_dir / DATABASE_NAME
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        assert store.schema_version == _migrations.latest_version()


async def test_wal_mode_is_on(store: Store) -> None:
    key = make_key()
    await store.keys.insert(key, make_material(key))
    files = store.data_files()
    assert files[0] == store.path
    assert store.path.with_name(DATABASE_NAME + "-wal") in files
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_connection_pragmas(tmp_path: pathlib.Path) -> None:
    async with connect(tmp_path / "x.sqlite3") as conn:
        assert (await conn.execute("PRAGMA foreign_keys"))[0][0] == 1
        assert (await conn.execute("PRAGMA synchronous"))[0][0] == 2  # FULL
        assert (await conn.execute("PRAGMA busy_timeout"))[0][0] > 0


async def test_reopen_finds_everything(tmp_path: pathlib.Path) -> None:
    key = make_key()
    material = make_material(key)
    rotated = make_material(key, 2)
    tags = make_tags(key, team="payments", env="prod")
    alias = make_alias(key, "payments")
    async with open_store(tmp_path) as store:
        await store.keys.insert(key, material, tags)
        await store.materials.add(rotated, msgspec.structs.replace(key, current_version=2))
        await store.aliases.insert(alias)

    async with open_store(tmp_path) as store:
        assert await store.keys.get(key.key_id) == msgspec.structs.replace(key, current_version=2)
        assert await store.materials.for_key(key.key_id) == [material, rotated]
        assert await store.materials.find(rotated.material_id) == rotated
        assert await store.tags.list(key.key_id) == sorted(tags, key=lambda t: t.tag_key)
        assert await store.aliases.all() == [alias]
        assert await store.keys.all_ids() == [key.key_id]
        assert _user_version(store.path) == _migrations.latest_version()


async def test_newer_database_is_refused_and_left_alone(tmp_path: pathlib.Path) -> None:
    async with open_store(tmp_path) as store:
        path = store.path
    newer = _migrations.latest_version() + 1
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {newer}")
        conn.commit()

    with pytest.raises(StoreVersionError) as caught:
        async with open_store(tmp_path):
            pytest.fail("a newer database must not open")
    message = str(caught.value)
    assert "\n" not in message
    assert str(newer) in message
    assert "newer" in message
    assert isinstance(caught.value, ValueError)
    assert _user_version(path) == newer


async def test_failed_migration_changes_nothing(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_store(tmp_path) as store:
        path = store.path
    broken = "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);"
    current = _migrations.latest_version()
    monkeypatch.setattr(_migrations, "migrations", [*_migrations.migrations, (current + 1, broken)])

    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        async with open_store(tmp_path):
            pytest.fail("a failed migration must not open")
    assert _user_version(path) == current
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables


async def test_new_migration_applies_once(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_store(tmp_path):
        pass
    added = "CREATE TABLE extra (x TEXT DEFAULT 'a;b');"
    new = _migrations.latest_version() + 1
    monkeypatch.setattr(_migrations, "migrations", [*_migrations.migrations, (new, added)])
    async with open_store(tmp_path) as store:
        assert store.schema_version == new
    async with open_store(tmp_path) as store:
        assert store.schema_version == new
        assert _user_version(store.path) == new


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [version for version, _ in _migrations.migrations]
    assert versions == list(range(1, len(versions) + 1))


def test_split_statements_respects_strings_and_triggers() -> None:
    script = """
        CREATE TABLE t (x TEXT DEFAULT ';');
        CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN UPDATE t SET x = 'a;b'; END;
        INSERT INTO t VALUES ('c;d');
    """
    statements = _migrations.split_statements(script)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        _migrations.split_statements("CREATE TABLE t (x TEXT); SELECT 'unterminated")


async def test_key_columns_are_the_record_fields(store: Store) -> None:
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(keys)")]
    assert columns == ["seq", *KeyRecord.__struct_fields__]
