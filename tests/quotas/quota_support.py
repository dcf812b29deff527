"""Helpers of the quota store tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from quotas import JobTicket, Mode

START = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


class FakeClock:
    """The store's clock; tests move it forward."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def ticket(
    job_id: str, user_id: int = 1, *, units: float = 100.0, mode: Mode | None = None, created: datetime | None = None
) -> JobTicket:
    """A job of `units` work units: 5 GPU seconds at the default 0.05 s per unit."""
    return JobTicket(
        job_id=job_id,
        user_id=user_id,
        kind="imagine",
        work_units=units,
        request='{"prompt": "a cat"}',
        mode=mode,
        account_created_at=created,
        images=4,
    )


def balances(path: Path) -> dict[int, tuple[tuple[int, int], tuple[int, int]]]:
    """user -> ((plan_ms, extra_ms) of the accounts row, the same summed over the ledger), read from the file."""
    with sqlite3.connect(path) as conn:
        return {
            user: ((plan, extra), (ledger_plan, ledger_extra))
            for user, plan, extra, ledger_plan, ledger_extra in conn.execute(
                "SELECT a.user_id, a.plan_ms, a.extra_ms, coalesce(sum(l.plan_ms), 0),"
                " coalesce(sum(l.extra_ms), 0) FROM accounts AS a LEFT JOIN ledger AS l USING (user_id)"
                " GROUP BY a.user_id"
            )
        }


def assert_balanced(path: Path) -> None:
    """Every account's two buckets equal its ledger sums and are non-negative."""
    for user, (columns, sums) in balances(path).items():
        assert columns == sums, f"user {user}: balance {columns} != ledger sums {sums}"
        assert min(columns) >= 0, f"user {user}: negative balance {columns}"
