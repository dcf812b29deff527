"""Accounts inside one write transaction: created on first use, renewed lazily, moved only by ledger rows.

A balance has two buckets: plan time (`plan_ms`, this period's allowance, expires at renewal) and extra
time (`extra_ms`, operator grants, never expires; spent after plan time). Both change only through
`Books.post`, whose ledger row moves the balance by trigger in the same statement; the row is inserted
only where it leaves both buckets non-negative, and CHECK constraints refuse a negative balance anyway.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from dataclasses import dataclass

from quotas import plans
from quotas.models import FREE_PLAN, LedgerKind, Plan, QuotaSettings, Renewal
from quotas.units import monthly_period, to_ms, to_seconds, utc_day

log = logging.getLogger(__name__)

OUTLIER_FACTOR = 10.0


@dataclass
class Account:
    """The mutable in-transaction copy of an accounts row and its plan."""

    user_id: int
    plan: Plan
    plan_until: float | None
    entitled_plan: str | None
    plan_ms: int
    extra_ms: int
    period_total_ms: int
    anchor_at: float
    period_start: float
    renews_at: float | None
    relax_ms: int
    topup_day: int | None
    last_job_at: float | None
    banned: bool
    ban_reason: str | None

    @property
    def balance_ms(self) -> int:
        return self.plan_ms + self.extra_ms


class LedgerRefused(RuntimeError):
    """A ledger row would have made a bucket negative: a bug in the caller's arithmetic."""


def unique_key(kind: LedgerKind) -> str:
    return f"{kind.value}:{uuid.uuid4().hex}"


class Books:
    """The accounts touched by one write transaction, at one instant `now` (unix seconds)."""

    def __init__(self, conn: sqlite3.Connection, settings: QuotaSettings, now: float) -> None:
        self.conn = conn
        self.settings = settings
        self.now = now

    def account(self, user_id: int) -> Account:
        """The user's account, created on the free plan with its trial if new, brought up to date (renewals)."""
        row = self.conn.execute("SELECT * FROM accounts WHERE user_id = ?", (user_id,)).fetchone()
        if row is None:
            return self._create(user_id)
        account = Account(
            user_id=user_id,
            plan=plans.load(self.conn, row["plan"]),
            plan_until=row["plan_until"],
            entitled_plan=row["entitled_plan"],
            plan_ms=row["plan_ms"],
            extra_ms=row["extra_ms"],
            period_total_ms=row["period_total_ms"],
            anchor_at=row["anchor_at"],
            period_start=row["period_start"],
            renews_at=row["renews_at"],
            relax_ms=row["relax_ms"],
            topup_day=row["topup_day"],
            last_job_at=row["last_job_at"],
            banned=bool(row["banned"]),
            ban_reason=row["ban_reason"],
        )
        self._refresh(account)
        return account

    def _create(self, user_id: int) -> Account:
        free = plans.load(self.conn, FREE_PLAN)
        account = Account(
            user_id=user_id,
            plan=free,
            plan_until=None,
            entitled_plan=None,
            plan_ms=0,
            extra_ms=0,
            period_total_ms=0,
            anchor_at=self.now,
            period_start=self.now,
            renews_at=None,
            relax_ms=0,
            topup_day=None,
            last_job_at=None,
            banned=False,
            ban_reason=None,
        )
        self.conn.execute(
            "INSERT INTO accounts (user_id, plan, anchor_at, period_start, created_at) VALUES (?, ?, ?, ?, ?)",
            (user_id, free.name, self.now, self.now, self.now),
        )
        self._start_period(account, free, grant=True, key=f"trial:{user_id}", reason="free trial")
        self._refresh(account)
        log.info("account created user=%s plan=%s", user_id, free.name)
        return account

    def _refresh(self, account: Account) -> None:
        """Apply what time has done since the account was last touched: plan end, renewal, daily top-up."""
        changed = False
        if account.plan_until is not None and self.now >= account.plan_until:
            ended = account.plan.name
            self.switch_plan(account, plans.load(self.conn, FREE_PLAN), until=None, reason=f"plan {ended} ended")
            account.entitled_plan = None
            changed = True
        if account.renews_at is not None and self.now >= account.renews_at:
            if account.plan.renewal is Renewal.MONTHLY:
                start, _end = monthly_period(account.anchor_at, self.now)
                key = f"renewal:{account.user_id}:{account.anchor_at!r}:{start!r}"
                self._start_period(account, account.plan, grant=True, key=key, reason="monthly renewal", start=start)
            else:  # an operator made the plan one-time since the period began: its time stays
                account.renews_at = None
            changed = True
        topup_ms = to_ms(account.plan.daily_topup_seconds)
        today = utc_day(self.now)
        if topup_ms and (account.topup_day is None or today > account.topup_day):
            if account.plan_ms < topup_ms:
                self.post(
                    account,
                    LedgerKind.GRANT,
                    plan_ms=topup_ms - account.plan_ms,
                    key=f"topup:{account.user_id}:{today}",
                    reason="daily top-up",
                )
            account.topup_day = today
            changed = True
        if changed:
            self.save(account)

    def switch_plan(
        self, account: Account, plan: Plan, *, until: float | None, reason: str, operator_id: int | None = None
    ) -> None:
        """Put the account on `plan` from now: a new period with the plan's allowance (none for free)."""
        account.plan = plan
        account.plan_until = until
        account.anchor_at = self.now
        self._start_period(
            account,
            plan,
            grant=plan.name != FREE_PLAN,
            key=unique_key(LedgerKind.RENEWAL),
            reason=reason,
            operator_id=operator_id,
        )

    def _start_period(
        self,
        account: Account,
        plan: Plan,
        *,
        grant: bool,
        key: str,
        reason: str,
        start: float | None = None,
        operator_id: int | None = None,
    ) -> None:
        """Expire unspent plan time and begin a period at `start` (default now), granting its allowance."""
        if account.plan_ms:
            self.post(
                account,
                LedgerKind.EXPIRE,
                plan_ms=-account.plan_ms,
                key=f"expire-{key}",
                reason=f"unspent plan time ({reason})",
                operator_id=operator_id,
            )
        allowance = to_ms(plan.fast_seconds) if grant else 0
        if allowance:
            kind = LedgerKind.GRANT if plan.renewal is Renewal.NONE else LedgerKind.RENEWAL
            self.post(account, kind, plan_ms=allowance, key=key, reason=reason, operator_id=operator_id)
        account.period_start = self.now if start is None else start
        account.period_total_ms = allowance
        account.relax_ms = 0
        account.renews_at = (
            monthly_period(account.anchor_at, account.period_start)[1] if plan.renewal is Renewal.MONTHLY else None
        )
        self.save(account)

    def post(
        self,
        account: Account,
        kind: LedgerKind,
        *,
        key: str,
        plan_ms: int = 0,
        extra_ms: int = 0,
        job_id: str | None = None,
        reason: str = "",
        operator_id: int | None = None,
    ) -> None:
        """Append a ledger row; its trigger moves the account's buckets by (`plan_ms`, `extra_ms`)."""
        inserted = self.conn.execute(
            "INSERT INTO ledger (user_id, at, kind, plan_ms, extra_ms, job_id, reason, operator_id, key) "
            "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? FROM accounts "
            " WHERE user_id = ? AND plan_ms + ? >= 0 AND extra_ms + ? >= 0",
            (
                account.user_id,
                self.now,
                kind.value,
                plan_ms,
                extra_ms,
                job_id,
                reason,
                operator_id,
                key,
                account.user_id,
                plan_ms,
                extra_ms,
            ),
        ).rowcount
        if inserted != 1:
            raise LedgerRefused(
                f"ledger row {key} ({plan_ms:+d} plan ms, {extra_ms:+d} extra ms) refused for user {account.user_id}"
            )
        account.plan_ms += plan_ms
        account.extra_ms += extra_ms
        log.debug(
            "ledger user=%s kind=%s plan_ms=%+d extra_ms=%+d job=%s",
            account.user_id,
            kind.value,
            plan_ms,
            extra_ms,
            job_id,
        )

    def save(self, account: Account) -> None:
        """Write the account's non-balance fields (balances are the ledger trigger's business)."""
        self.conn.execute(
            "UPDATE accounts SET plan = ?, plan_until = ?, entitled_plan = ?, period_total_ms = ?, anchor_at = ?, "
            "period_start = ?, renews_at = ?, relax_ms = ?, topup_day = ?, last_job_at = ?, banned = ?, "
            "ban_reason = ? WHERE user_id = ?",
            (
                account.plan.name,
                account.plan_until,
                account.entitled_plan,
                account.period_total_ms,
                account.anchor_at,
                account.period_start,
                account.renews_at,
                account.relax_ms,
                account.topup_day,
                account.last_job_at,
                int(account.banned),
                account.ban_reason,
                account.user_id,
            ),
        )

    def audit(self, action: str, *, operator_id: int | None, user_id: int | None, **detail: object) -> None:
        self.conn.execute(
            "INSERT INTO audit (at, operator_id, action, user_id, detail) VALUES (?, ?, ?, ?, ?)",
            (self.now, operator_id, action, user_id, json.dumps(detail, default=str, sort_keys=True)),
        )
        log.info("audit action=%s operator=%s user=%s %s", action, operator_id, user_id, detail)

    def seconds_per_unit(self) -> float:
        return read_seconds_per_unit(self.conn, self.settings)

    def learn_seconds_per_unit(self, gpu_seconds: float, work_units: float) -> None:
        """Fold a finished job into the running average of GPU seconds per work unit.

        The first sample replaces the configured default. Each sample is clamped to within `OUTLIER_FACTOR`
        of the current average, so that one odd job (a tiny request dominated by fixed overhead, a stalled
        GPU) cannot throw every later estimate off.
        """
        if work_units <= 0 or gpu_seconds <= 0:
            return
        current = self.seconds_per_unit()
        sample = min(max(gpu_seconds / work_units, current / OUTLIER_FACTOR), current * OUTLIER_FACTOR)
        samples = self.conn.execute("SELECT value FROM meta WHERE key = 'samples'").fetchone()
        weight = 1.0 if samples is None else self.settings.seconds_per_unit_weight
        value = weight * sample + (1 - weight) * current
        self.conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [("seconds_per_unit", value), ("samples", (samples[0] if samples else 0) + 1)],
        )


def read_seconds_per_unit(conn: sqlite3.Connection, settings: QuotaSettings) -> float:
    row = conn.execute("SELECT value FROM meta WHERE key = 'seconds_per_unit'").fetchone()
    return settings.default_seconds_per_unit if row is None else float(row[0])


def ledger_sums(conn: sqlite3.Connection, user_id: int) -> tuple[float, float]:
    """(plan, extra) seconds as the sum of the user's ledger rows: what the balance columns must equal."""
    row = conn.execute(
        "SELECT coalesce(sum(plan_ms), 0), coalesce(sum(extra_ms), 0) FROM ledger WHERE user_id = ?", (user_id,)
    ).fetchone()
    return to_seconds(row[0]), to_seconds(row[1])
