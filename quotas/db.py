"""The SQLite file: opening it (pragmas, integrity check, migrations) and running transactions on it.

Every store operation is one synchronous function of a `sqlite3.Connection`, handed whole to aiosqlite's
connection thread: an operation of several statements costs one thread hand-off (~100 us) instead of one
per statement, and no other operation of this connection can interleave with it. Mutations run inside
`BEGIN IMMEDIATE`, which takes SQLite's write lock before the first read, so nothing an operation reads
can change under it, in this process or another.

Group commit: with synchronous=FULL each COMMIT waits for the disk (~2 ms here, more than all of an
operation's statements), so the mutations that arrive while one commit is under way share the next
transaction, each in its own SAVEPOINT: an operation that raises rolls back alone, and every caller
hears back only once its transaction is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import sqlite3
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from quotas import plans
from quotas.errors import SchemaTooNew, StoreCorrupted, StoreError
from quotas.models import QuotaSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]
_MIGRATION_NAME = re.compile(r"^(\d{4})_\w+\.sql$")

WAKE_PER_TURN = 32
"""Callers of one group commit resumed per turn of the event loop: a group of hundreds resumed at once would
run all their continuations in a single turn and hold up every other task of the process meanwhile."""


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) of every migration shipped with the package, in order."""
    found = []
    for entry in (resources.files("quotas") / "migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(script: str) -> list[str]:
    """A SQL script split into complete statements (trigger bodies stay whole)."""
    done, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            done.append(pending.strip())
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending.strip()[:80]!r}")
    return done


def create_private(path: Path) -> None:
    """Create `path` readable and writable by its owner only (SQLite gives its -wal and -shm files the same mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


def configure(conn: sqlite3.Connection, *, busy_timeout_seconds: float) -> None:
    """The store's connection settings: WAL, full fsync at commit, foreign keys, wait for locks."""
    conn.isolation_level = None  # transactions are explicit
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
    journal = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if journal != "wal":
        raise StoreError(f"SQLite refused WAL mode (journal_mode is {journal!r}); use a local file system")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def check_integrity(conn: sqlite3.Connection) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise StoreCorrupted(
            "PRAGMA integrity_check failed: "
            + "; ".join(problems[:5])
            + ". Restore the latest backup (see QuotaStore.backup) or repair the file."
        )


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the missing migrations, each in one transaction with its `user_version`; returns the version."""
    known = migrations()
    latest = known[-1][0] if known else 0
    for version, script in known:

        def apply(c: sqlite3.Connection, version: int = version, script: str = script) -> bool:
            current = c.execute("PRAGMA user_version").fetchone()[0]
            if current > latest:
                raise SchemaTooNew(f"the database is at schema {current}, this Songe knows {latest}: upgrade Songe")
            if current >= version:
                return False
            for statement in statements(script):
                c.execute(statement)
            c.execute(f"PRAGMA user_version = {version}")
            return True

        if immediate(conn, apply):
            log.info("quota store migrated to schema %s", version)
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def prepare(conn: sqlite3.Connection, settings: QuotaSettings) -> None:
    """Everything `open` does to a fresh connection: settings, integrity check, migrations, default plans."""
    try:
        configure(conn, busy_timeout_seconds=settings.busy_timeout_seconds)
        check_integrity(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreCorrupted(f"not a usable SQLite database ({exc}); restore a backup or move the file away") from exc
    migrate(conn)
    immediate(conn, lambda c: plans.seed(c, settings))


def immediate(conn: sqlite3.Connection, work: Work[T]) -> T:
    """Run `work` in one `BEGIN IMMEDIATE` transaction: committed if it returns, rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def commit_group(conn: sqlite3.Connection, group: list[Work[Any]]) -> list[tuple[bool, Any]]:
    """Run each of `group` in its own savepoint of one `BEGIN IMMEDIATE` transaction, then commit once.

    Returns (True, result) or (False, exception) per operation; an operation's exception undoes only its
    own savepoint. Anything that breaks the transaction itself (BEGIN, COMMIT, a BaseException) rolls it
    all back and propagates.
    """
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for work in group:
            conn.execute("SAVEPOINT operation")
            try:
                outcomes.append((True, work(conn)))
            except Exception as exc:  # the operation's own failure: undo it, keep the others
                conn.execute("ROLLBACK TO operation")
                outcomes.append((False, exc))
            conn.execute("RELEASE operation")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def snapshot(conn: sqlite3.Connection, work: Work[T]) -> T:
    """Run read-only `work` in one deferred transaction, so that its queries see one state of the file."""
    conn.execute("BEGIN")
    try:
        return work(conn)
    finally:
        conn.execute("COMMIT")


def connect(path: Path, settings: QuotaSettings) -> sqlite3.Connection:
    """A plain, prepared connection (what the store uses, without aiosqlite): for tools and benchmarks."""
    create_private(path)
    conn = sqlite3.connect(path)
    try:
        prepare(conn, settings)
    except BaseException:
        conn.close()
        raise
    return conn


def _backup_to(conn: sqlite3.Connection, dest: Path) -> None:
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private(partial)
    target = sqlite3.connect(partial)
    try:
        conn.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")
    finally:
        target.close()
    os.replace(partial, dest)


class Database:
    """One aiosqlite connection that runs whole transactions on its thread."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._aio = connection
        self.path = path
        self._waiting: list[tuple[Work[Any], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path, settings: QuotaSettings) -> Database:
        create_private(path)
        connection = await aiosqlite.connect(path)
        db = cls(connection, path)
        try:
            await db._run(lambda conn: prepare(conn, settings))
        except BaseException:
            await connection.close()
            raise
        return db

    async def _run(self, work: Work[T]) -> T:
        # aiosqlite's own methods are built on `_execute`: it queues a callable for the connection's thread.
        result: T = await self._aio._execute(work, self._aio._conn)  # type: ignore[no-untyped-call]
        return result

    async def write(self, work: Work[T]) -> T:
        """Run `work` atomically in a `BEGIN IMMEDIATE` transaction; returns once that is committed.

        Writes arriving while a commit is under way are grouped into the next transaction (see the module).
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_waiting())
        return await future

    async def _commit_waiting(self) -> None:
        try:
            while self._waiting:
                group = [(work, future) for work, future in self._waiting if not future.cancelled()]
                self._waiting = []
                try:
                    outcomes = await self._run(functools.partial(commit_group, group=[work for work, _ in group]))
                except Exception as exc:
                    log.error("a group of %s writes failed to commit: %s", len(group), exc)
                    outcomes = [(False, exc)] * len(group)
                for n, ((_, future), (ok, value)) in enumerate(zip(group, outcomes, strict=True), 1):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
                    if n % WAKE_PER_TURN == 0:
                        await asyncio.sleep(0)
        finally:
            self._committer = None

    async def read(self, work: Work[T]) -> T:
        """Run read-only `work` on one consistent snapshot."""
        return await self._run(lambda conn: snapshot(conn, work))

    async def backup(self, dest: Path) -> None:
        """Copy the live database to `dest` (mode 0600) by SQLite's online backup; it appears whole or not at all."""
        await self._run(lambda conn: _backup_to(conn, dest))

    async def close(self) -> None:
        """Let pending writes commit, then close the connection."""
        if self._committer is not None:
            await self._committer
        await self._aio.close()
