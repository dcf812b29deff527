"""The file itself: permissions, pragmas, integrity check, migrations, the append-only ledger, backups."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from quota_support import FakeClock, assert_balanced, ticket

from quotas import QuotaSettings, QuotaStore, SchemaTooNew, StoreCorrupted, db
from tests.support.turns import TurnCounter


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_the_database_and_its_wal_are_private(store: QuotaStore, db_path: Path) -> None:
    await store.account(1)
    files = sorted(db_path.parent.iterdir())
    assert [f.name for f in files] == ["songe.sqlite3", "songe.sqlite3-shm", "songe.sqlite3-wal"]
    assert {mode_of(f) for f in files} == {0o600}


def test_connections_use_wal_full_sync_and_foreign_keys(db_path: Path) -> None:
    conn = db.connect(db_path, QuotaSettings(busy_timeout_seconds=3))
    try:
        pragmas = [
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "user_version")
        ]
    finally:
        conn.close()
    assert pragmas == ["wal", 2, 1, 3000, db.migrations()[-1][0]]


async def test_a_file_that_is_not_a_database_is_refused_clearly(db_path: Path) -> None:
    db_path.write_bytes(b"this is not SQLite" * 512)
    with pytest.raises(StoreCorrupted, match="not a usable SQLite database"):
        await QuotaStore.open(db_path)


async def test_a_database_that_fails_its_integrity_check_is_refused(db_path: Path, clock: FakeClock) -> None:
    store = await QuotaStore.open(db_path, clock=clock)
    for user in range(20):
        await store.account(user)
    await store.close()
    with sqlite3.connect(db_path) as conn:  # make the index disagree with its table
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_schema SET sql = 'CREATE INDEX ledger_by_user ON ledger (at, id)'"
            " WHERE name = 'ledger_by_user'"
        )
    with pytest.raises(StoreCorrupted, match="integrity_check failed"):
        await QuotaStore.open(db_path)


async def test_a_schema_newer_than_the_code_is_refused(db_path: Path) -> None:
    await (await QuotaStore.open(db_path)).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNew, match="upgrade Songe"):
        await QuotaStore.open(db_path)


async def test_reopening_keeps_the_data_and_migrates_nothing(db_path: Path, clock: FakeClock) -> None:
    store = await QuotaStore.open(db_path, clock=clock)
    await store.reserve(ticket("j"))
    await store.close()
    store = await QuotaStore.open(db_path, clock=clock)
    try:
        assert [j.job_id for j in await store.open_jobs()] == ["j"]
        assert len(await store.plans()) == 5
    finally:
        await store.close()


async def test_jobs_that_ended_before_told_was_tracked_are_not_told_again(
    db_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = db.migrations()[:1]
    with monkeypatch.context() as patched:
        patched.setattr(db, "migrations", lambda: first)
        store = await QuotaStore.open(db_path, clock=clock)
        for job in ("failed", "succeeded"):
            await store.reserve(ticket(job))
        await store.refund("failed", reason="failed: internal")
        await store.settle("succeeded", gpu_seconds=1.0, result="{}")
        await store.close()
    store = await QuotaStore.open(db_path, clock=clock)
    try:
        assert [j.job_id for j in await store.untold_jobs()] == ["succeeded"]  # still to be posted
    finally:
        await store.close()


def test_a_failing_migration_leaves_no_trace(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = db.migrations()
    broken = (good[-1][0] + 1, "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n")
    monkeypatch.setattr(db, "migrations", lambda: [*good, broken])
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        db.connect(db_path, QuotaSettings())
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == good[-1][0]
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'").fetchone()[0] == 0


def test_statements_keep_trigger_bodies_whole() -> None:
    script = (
        "CREATE TABLE a (x);\n-- a comment; with a semicolon\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n"
        "  SELECT 1;\n  SELECT 2;\nEND;\n"
    )
    parts = db.statements(script)
    assert len(parts) == 2 and parts[1].endswith("END;")


@pytest.mark.parametrize(
    "sql", ["UPDATE ledger SET plan_ms = 0", "DELETE FROM ledger", "UPDATE accounts SET plan_ms = -1"]
)
async def test_the_ledger_is_append_only_and_balances_never_negative(
    store: QuotaStore, db_path: Path, sql: str
) -> None:
    await store.account(1)
    with sqlite3.connect(db_path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(sql)
    assert_balanced(db_path)


async def test_backup_is_a_private_consistent_copy(store: QuotaStore, tmp_path: Path, clock: FakeClock) -> None:
    await store.reserve(ticket("j"))
    dest = tmp_path / "backups" / "copy.sqlite3"
    dest.parent.mkdir()
    await store.backup(dest)
    assert mode_of(dest) == 0o600 and sorted(p.name for p in dest.parent.iterdir()) == ["copy.sqlite3"]
    copy = await QuotaStore.open(dest, clock=clock)
    try:
        assert [j.job_id for j in await copy.open_jobs()] == ["j"]
        assert await copy.ledger(1) == await store.ledger(1)
    finally:
        await copy.close()


def test_a_failing_operation_in_a_commit_group_is_undone_alone(db_path: Path) -> None:
    conn = db.connect(db_path, QuotaSettings())

    def insert(value: int) -> db.Work[int]:
        def work(c: sqlite3.Connection) -> int:
            c.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{value}", value))
            if value == 2:
                raise LookupError("refused")
            return value

        return work

    try:
        outcomes = db.commit_group(conn, [insert(1), insert(2), insert(3)])
        assert [ok for ok, _ in outcomes] == [True, False, True]
        assert isinstance(outcomes[1][1], LookupError)
        assert sorted(k for (k,) in conn.execute("SELECT key FROM meta")) == ["k1", "k3"]
        assert not conn.in_transaction
    finally:
        conn.close()


async def test_concurrent_writes_share_commits_and_each_sees_its_own_outcome(store: QuotaStore, db_path: Path) -> None:
    calls = [store.grant(1, 1.0, operator_id=1, reason=str(n)) for n in range(10)]
    calls.append(store.set_plan(1, "no such plan", operator_id=1))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["AccountView"] * 10 + ["UnknownPlan"]
    assert (await store.account(1)).extra_seconds == 10.0
    assert_balanced(db_path)


async def test_the_callers_of_a_large_commit_group_resume_a_few_per_turn(db_path: Path) -> None:
    database = await db.Database.open(db_path, QuotaSettings())
    turns = TurnCounter()

    def insert(value: int) -> db.Work[int]:
        def work(c: sqlite3.Connection) -> int:
            c.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{value}", value))
            return value

        return work

    async def write(value: int) -> int:
        result = await database.write(insert(value))
        turns.mark()
        return result

    turns.start()
    try:
        results = await asyncio.gather(*(write(n) for n in range(200)))
    finally:
        turns.stop()
        await database.close()
    assert results == list(range(200))
    assert max(turns.per_turn.values()) == db.WAKE_PER_TURN
    assert len(turns.per_turn) >= 200 // db.WAKE_PER_TURN
