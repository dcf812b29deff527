"""`QuotaStore`: accounts, plans, the GPU-time ledger and the jobs table of Songe on one SQLite file.

Quota model (mirrors Midjourney): the unit is GPU seconds. New users start on the free plan with a
one-time trial; paid plans refill their fast time on the monthly anniversary of the plan's start, and
unspent plan time does not roll over. Extra time granted by operators never expires and is spent after
plan time. Fast jobs spend fast time, turbo twice as much, relax nothing (relax jobs wait longer as the
user's relax use grows, see `QuotaSettings.relax_delay`). The parts:

    store.py        open/close/backup, account views, the ledger
    jobs.py         reserve, settle, refund and the jobs table   (charges.py: the ledger moves)
    admin.py        operators: grants, plans, bans, entitlements, statistics, audit
    preferences.py  user preferences and server policies
    ledger.py       accounts inside a transaction: creation, renewal, ledger rows
    db.py           the file: pragmas, integrity check, migrations, transactions
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from pathlib import Path

from quotas.admin import AdminMixin
from quotas.base import Clock, account_view, utc_now
from quotas.db import Database
from quotas.jobs import JobsMixin
from quotas.models import AccountView, LedgerEntry, LedgerKind, QuotaSettings
from quotas.preferences import PreferencesMixin
from quotas.units import to_dt, to_seconds

log = logging.getLogger(__name__)


class QuotaStore(JobsMixin, AdminMixin, PreferencesMixin):
    """The quota store. Open with `await QuotaStore.open(path)`; every method is a coroutine.

    Each mutating method is one `BEGIN IMMEDIATE` transaction; accounts are created on first use and
    renewed lazily by whichever transaction touches them. `clock` (tests) replaces the wall clock.
    """

    @classmethod
    async def open(cls, path: Path, *, settings: QuotaSettings | None = None, clock: Clock | None = None) -> QuotaStore:
        """Open (creating, mode 0600) and migrate the database; raises StoreCorrupted if it fails its check."""
        settings = settings or QuotaSettings()
        db = await Database.open(Path(path), settings)
        log.info("quota store open at %s", path)
        return cls(db, settings, clock or utc_now)

    async def close(self) -> None:
        await self._db.close()

    async def backup(self, dest: Path) -> None:
        """A consistent copy of the live database at `dest` (mode 0600), taken with SQLite's online backup."""
        await self._db.backup(Path(dest))
        log.info("quota store backed up to %s", dest)

    async def account(self, user_id: int, now: datetime | None = None) -> AccountView:
        """The user's account (created on the free plan on first use), brought up to date at `now`."""
        return await self._books(lambda books: account_view(books, books.account(user_id)), now)

    async def ledger(self, user_id: int, *, limit: int = 20) -> list[LedgerEntry]:
        """The user's latest ledger rows, newest first, each with the balance after it."""

        def work(conn: sqlite3.Connection) -> list[LedgerEntry]:
            rows = conn.execute(
                "SELECT * FROM (SELECT *, sum(plan_ms + extra_ms) OVER (ORDER BY id) AS balance_after_ms"
                " FROM ledger WHERE user_id = ?) ORDER BY id DESC LIMIT ?",
                (user_id, limit),
            )
            return [
                LedgerEntry(
                    id=row["id"],
                    at=to_dt(row["at"]),
                    kind=LedgerKind(row["kind"]),
                    seconds=to_seconds(row["plan_ms"] + row["extra_ms"]),
                    balance_after=to_seconds(row["balance_after_ms"]),
                    job_id=row["job_id"],
                    reason=row["reason"],
                    operator_id=row["operator_id"],
                    plan_seconds=to_seconds(row["plan_ms"]),
                    extra_seconds=to_seconds(row["extra_ms"]),
                )
                for row in rows
            ]

        return await self._db.read(work)

    async def verify(self) -> list[int]:
        """Users whose balance columns differ from the sums of their ledger rows (always empty, unless the
        file was edited by hand)."""
        return await self._db.read(
            lambda conn: [
                user
                for (user,) in conn.execute(
                    "SELECT a.user_id FROM accounts AS a LEFT JOIN"
                    " (SELECT user_id, sum(plan_ms) AS p, sum(extra_ms) AS e FROM ledger GROUP BY user_id) AS l"
                    " USING (user_id)"
                    " WHERE a.plan_ms != coalesce(l.p, 0) OR a.extra_ms != coalesce(l.e, 0)"
                )
            ]
        )
