"""What every part of `QuotaStore` shares: the database, the settings, the clock, the account view."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from quotas.charges import default_mode
from quotas.db import Database
from quotas.ledger import Account, Books
from quotas.models import AccountView, QuotaSettings
from quotas.units import maybe_dt, to_seconds, to_ts

T = TypeVar("T")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class StoreBase:
    def __init__(self, db: Database, settings: QuotaSettings, clock: Clock) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock

    @property
    def settings(self) -> QuotaSettings:
        return self._settings

    def _ts(self, now: datetime | None) -> float:
        return to_ts(self._clock() if now is None else now)

    async def _books(self, work: Callable[[Books], T], now: datetime | None = None) -> T:
        """Run `work` in one write transaction, with the accounts seen at `now` (default: the clock)."""
        ts = self._ts(now)
        return await self._db.write(lambda conn: work(Books(conn, self._settings, ts)))


def account_view(books: Books, account: Account) -> AccountView:
    """The `/info` view of an account inside the transaction that just brought it up to date."""
    row = books.conn.execute(
        "SELECT lifetime_images, lifetime_gpu_ms, "
        " (SELECT count(*) FROM jobs WHERE user_id = a.user_id AND status = 'queued') AS queued, "
        " (SELECT count(*) FROM jobs WHERE user_id = a.user_id AND status = 'running') AS running "
        "FROM accounts AS a WHERE user_id = ?",
        (account.user_id,),
    ).fetchone()
    return AccountView(
        user_id=account.user_id,
        plan=account.plan,
        mode=default_mode(books.conn, account.user_id, account.plan),
        fast_remaining=to_seconds(account.plan_ms),
        fast_period_total=to_seconds(account.period_total_ms),
        extra_seconds=to_seconds(account.extra_ms),
        renews_at=maybe_dt(account.renews_at),
        plan_until=maybe_dt(account.plan_until),
        lifetime_images=row["lifetime_images"],
        lifetime_gpu_seconds=to_seconds(row["lifetime_gpu_ms"]),
        relax_seconds_period=to_seconds(account.relax_ms),
        queued=row["queued"],
        running=row["running"],
        banned=account.banned,
        ban_reason=account.ban_reason,
    )
