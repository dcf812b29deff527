"""The operators' half of `QuotaStore`: grants, plans, resets, bans, entitlements, statistics, audit.

Every change is one write transaction that leaves an audit row with the operator's id (None for a
Discord entitlement) and, where time moves, ledger rows with the same id.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from datetime import datetime
from typing import Any

from quotas import plans
from quotas.base import StoreBase, account_view
from quotas.ledger import Books, unique_key
from quotas.models import FREE_PLAN, AccountView, AuditEntry, JobStatus, LedgerKind, Plan, Renewal, Stats
from quotas.units import to_dt, to_ms, to_seconds, to_ts

_PLAN_TYPES: dict[str, type | tuple[type, ...]] = {
    "fast_seconds": (int, float),
    "daily_topup_seconds": (int, float),
    "renewal": (str, Renewal),
    "relax_allowed": bool,
    "turbo_allowed": bool,
    "private_allowed": bool,
    "max_concurrent_fast": int,
    "max_concurrent_relax": int,
    "max_queued": int,
    "rank": int,
}


class AdminMixin(StoreBase):
    async def grant(self, user_id: int, seconds: float, *, operator_id: int, reason: str) -> AccountView:
        """Add extra time (never expires); a negative amount removes extra time, then plan time, down to zero."""
        if not math.isfinite(seconds):
            raise ValueError(f"grant of {seconds!r} seconds")

        def work(books: Books) -> AccountView:
            account = books.account(user_id)
            amount = to_ms(seconds)
            if amount > 0:
                books.post(
                    account,
                    LedgerKind.GRANT,
                    extra_ms=amount,
                    key=unique_key(LedgerKind.GRANT),
                    reason=reason,
                    operator_id=operator_id,
                )
            elif amount < 0:
                from_extra = min(account.extra_ms, -amount)
                from_plan = min(account.plan_ms, -amount - from_extra)
                amount = -(from_extra + from_plan)
                if amount:
                    books.post(
                        account,
                        LedgerKind.ADJUST,
                        plan_ms=-from_plan,
                        extra_ms=-from_extra,
                        key=unique_key(LedgerKind.ADJUST),
                        reason=reason,
                        operator_id=operator_id,
                    )
            books.audit(
                "grant",
                operator_id=operator_id,
                user_id=user_id,
                asked=seconds,
                applied=to_seconds(amount),
                reason=reason,
            )
            return account_view(books, account)

        return await self._books(work)

    async def set_plan(
        self, user_id: int, plan: str, *, operator_id: int, until: datetime | None = None
    ) -> AccountView:
        """Put the user on `plan` from now (a new period and allowance); it reverts to free after `until`."""

        def work(books: Books) -> AccountView:
            chosen = plans.load(books.conn, plan)
            end = None if until is None else to_ts(until)
            if end is not None and end <= books.now:
                raise ValueError(f"plan end {until} is not in the future")
            account = books.account(user_id)
            books.switch_plan(account, chosen, until=end, reason=f"plan set to {plan}", operator_id=operator_id)
            account.entitled_plan = None
            books.save(account)
            books.audit("set_plan", operator_id=operator_id, user_id=user_id, plan=plan, until=until)
            return account_view(books, account)

        return await self._books(work)

    async def reset(self, user_id: int, *, operator_id: int) -> AccountView:
        """Refill the plan time of the current period to the plan's allowance (and clear relax use)."""

        def work(books: Books) -> AccountView:
            account = books.account(user_id)
            target = to_ms(account.plan.fast_seconds)
            if target != account.plan_ms:
                books.post(
                    account,
                    LedgerKind.ADJUST,
                    plan_ms=target - account.plan_ms,
                    key=unique_key(LedgerKind.ADJUST),
                    reason="plan time reset",
                    operator_id=operator_id,
                )
            account.period_total_ms = target
            account.relax_ms = 0
            books.save(account)
            books.audit("reset", operator_id=operator_id, user_id=user_id, plan_seconds=to_seconds(target))
            return account_view(books, account)

        return await self._books(work)

    async def ban(self, user_id: int, *, operator_id: int, reason: str) -> None:
        """Refuse every new job of the user (open jobs finish)."""
        await self._books(lambda books: self._set_ban(books, user_id, operator_id, reason))

    async def unban(self, user_id: int, *, operator_id: int) -> None:
        await self._books(lambda books: self._set_ban(books, user_id, operator_id, None))

    @staticmethod
    def _set_ban(books: Books, user_id: int, operator_id: int, reason: str | None) -> None:
        account = books.account(user_id)
        account.banned = reason is not None
        account.ban_reason = reason
        books.save(account)
        books.audit("ban" if reason is not None else "unban", operator_id=operator_id, user_id=user_id, reason=reason)

    async def record_action(self, action: str, *, operator_id: int, **detail: Any) -> None:
        """Keep an operator's action that moves no time (pausing the queue, a backup) in the audit log."""
        await self._books(lambda books: books.audit(action, operator_id=operator_id, user_id=None, **detail))

    async def sync_entitlement(self, user_id: int, plan: str | None) -> None:
        """A Discord subscription's plan (None: none active). Cheap no-op when nothing changed.

        A lapsed entitlement reverts to free only a plan that came from an entitlement; a plan set by an
        operator stays.
        """

        def work(books: Books) -> None:
            row = books.conn.execute(
                "SELECT plan, entitled_plan FROM accounts WHERE user_id = ?", (user_id,)
            ).fetchone()
            current = (None, None) if row is None else (row["plan"], row["entitled_plan"])
            if plan is None and current[1] is None or plan is not None and current == (plan, plan):
                return
            target = plans.load(books.conn, plan or FREE_PLAN)
            account = books.account(user_id)
            if account.plan.name != target.name:
                books.switch_plan(account, target, until=None, reason=f"Discord subscription: {plan or 'ended'}")
            account.entitled_plan = plan
            books.save(account)
            books.audit("entitlement", operator_id=None, user_id=user_id, plan=plan)

        await self._books(work)

    async def plans(self) -> list[Plan]:
        """Every plan, smallest first."""
        return await self._db.read(plans.load_all)

    async def update_plan(self, name: str, *, operator_id: int, **changes: Any) -> Plan:
        """Change some of a plan's numbers (fields of `Plan` other than its name); periods in course keep
        their allowance until they renew."""
        for key, value in changes.items():
            if key not in _PLAN_TYPES:
                raise TypeError(f"unknown plan field {key!r}; fields are {', '.join(sorted(_PLAN_TYPES))}")
            expected = _PLAN_TYPES[key]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise TypeError(f"plan field {key} takes {expected}, got {value!r}")

        def work(books: Books) -> Plan:
            updated = dataclasses.replace(plans.load(books.conn, name), **changes)
            plans.save(books.conn, updated)
            books.audit("update_plan", operator_id=operator_id, user_id=None, plan=name, changes=changes)
            return updated

        return await self._books(work)

    async def stats(self, *, since: datetime) -> Stats:
        """Jobs created since `since` by status, images and GPU time of jobs finished since, users."""
        start = to_ts(since)

        def work(conn: sqlite3.Connection) -> Stats:
            by_status = dict.fromkeys(JobStatus, 0)
            for status, count in conn.execute(
                "SELECT status, count(*) FROM jobs WHERE created_at >= ? GROUP BY status", (start,)
            ):
                by_status[JobStatus(status)] = count
            images, gpu_ms, charged_ms = conn.execute(
                "SELECT coalesce(sum(images) FILTER (WHERE status = 'succeeded'), 0), coalesce(sum(gpu_ms), 0),"
                " coalesce(sum(charged_ms), 0) FROM jobs WHERE finished_at >= ?",
                (start,),
            ).fetchone()
            return Stats(
                since=to_dt(start),
                jobs_by_status=by_status,
                images=images,
                gpu_seconds=to_seconds(gpu_ms),
                charged_seconds=to_seconds(charged_ms),
                users_by_plan=dict(conn.execute("SELECT plan, count(*) FROM accounts GROUP BY plan ORDER BY plan")),
                active_users=conn.execute(
                    "SELECT count(DISTINCT user_id) FROM jobs WHERE created_at >= ?", (start,)
                ).fetchone()[0],
                new_users=conn.execute("SELECT count(*) FROM accounts WHERE created_at >= ?", (start,)).fetchone()[0],
            )

        return await self._db.read(work)

    async def audit(self, *, limit: int = 50) -> list[AuditEntry]:
        """The latest operator actions, newest first."""

        def work(conn: sqlite3.Connection) -> list[AuditEntry]:
            return [
                AuditEntry(
                    id=row["id"],
                    at=to_dt(row["at"]),
                    operator_id=row["operator_id"],
                    action=row["action"],
                    user_id=row["user_id"],
                    detail=row["detail"],
                )
                for row in conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
            ]

        return await self._db.read(work)
