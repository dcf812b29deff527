"""The default plans (in the spirit of Midjourney's Basic / Standard / Pro / Mega) and the plans table."""

from __future__ import annotations

import sqlite3
from dataclasses import fields

from quotas.errors import UnknownPlan
from quotas.models import FREE_PLAN, Plan, QuotaSettings, Renewal
from quotas.units import to_ms, to_seconds

HOUR = 3600.0
_COLUMNS = (
    "name",
    "rank",
    "fast_ms",
    "renewal",
    "daily_topup_ms",
    "relax_allowed",
    "turbo_allowed",
    "private_allowed",
    "max_concurrent_fast",
    "max_concurrent_relax",
    "max_queued",
)
EDITABLE = frozenset(f.name for f in fields(Plan)) - {"name"}


def default_plans(settings: QuotaSettings) -> tuple[Plan, ...]:
    """The plans a new database starts with; the free plan's allowance comes from the settings."""
    return (
        Plan(
            name=FREE_PLAN,
            rank=0,
            fast_seconds=settings.free_trial_seconds,
            renewal=Renewal.NONE,
            daily_topup_seconds=settings.free_daily_topup_seconds,
            max_concurrent_fast=2,
            max_queued=4,
        ),
        Plan(
            name="basic",
            rank=1,
            fast_seconds=3.3 * HOUR,
            renewal=Renewal.MONTHLY,
            turbo_allowed=True,
            max_concurrent_fast=3,
            max_queued=10,
        ),
        Plan(
            name="standard",
            rank=2,
            fast_seconds=15 * HOUR,
            renewal=Renewal.MONTHLY,
            relax_allowed=True,
            turbo_allowed=True,
            max_concurrent_fast=3,
            max_concurrent_relax=3,
            max_queued=10,
        ),
        Plan(
            name="pro",
            rank=3,
            fast_seconds=30 * HOUR,
            renewal=Renewal.MONTHLY,
            relax_allowed=True,
            turbo_allowed=True,
            private_allowed=True,
            max_concurrent_fast=12,
            max_concurrent_relax=6,
            max_queued=15,
        ),
        Plan(
            name="mega",
            rank=4,
            fast_seconds=60 * HOUR,
            renewal=Renewal.MONTHLY,
            relax_allowed=True,
            turbo_allowed=True,
            private_allowed=True,
            max_concurrent_fast=12,
            max_concurrent_relax=12,
            max_queued=24,
        ),
    )


def _row(plan: Plan) -> tuple[object, ...]:
    return (
        plan.name,
        plan.rank,
        to_ms(plan.fast_seconds),
        plan.renewal.value,
        to_ms(plan.daily_topup_seconds),
        int(plan.relax_allowed),
        int(plan.turbo_allowed),
        int(plan.private_allowed),
        plan.max_concurrent_fast,
        plan.max_concurrent_relax,
        plan.max_queued,
    )


def from_row(row: sqlite3.Row) -> Plan:
    return Plan(
        name=row["name"],
        rank=row["rank"],
        fast_seconds=to_seconds(row["fast_ms"]),
        renewal=Renewal(row["renewal"]),
        daily_topup_seconds=to_seconds(row["daily_topup_ms"]),
        relax_allowed=bool(row["relax_allowed"]),
        turbo_allowed=bool(row["turbo_allowed"]),
        private_allowed=bool(row["private_allowed"]),
        max_concurrent_fast=row["max_concurrent_fast"],
        max_concurrent_relax=row["max_concurrent_relax"],
        max_queued=row["max_queued"],
    )


def seed(conn: sqlite3.Connection, settings: QuotaSettings) -> None:
    """Insert the default plans that are missing; rows operators have edited stay as they are."""
    conn.executemany(
        f"INSERT OR IGNORE INTO plans ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
        [_row(plan) for plan in default_plans(settings)],
    )


def save(conn: sqlite3.Connection, plan: Plan) -> None:
    conn.execute(
        f"UPDATE plans SET {', '.join(f'{c} = ?' for c in _COLUMNS[1:])} WHERE name = ?", (*_row(plan)[1:], plan.name)
    )


def load_all(conn: sqlite3.Connection) -> list[Plan]:
    return [from_row(row) for row in conn.execute("SELECT * FROM plans ORDER BY rank, name")]


def load(conn: sqlite3.Connection, name: str) -> Plan:
    row = conn.execute("SELECT * FROM plans WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise UnknownPlan(name, tuple(plan.name for plan in load_all(conn)))
    return from_row(row)


def upgrades(conn: sqlite3.Connection, current: Plan, *, relax: bool = False, turbo: bool = False) -> tuple[str, ...]:
    """Names of the plans ranked above `current` that include relax (or turbo) mode when asked."""
    return tuple(
        plan.name
        for plan in load_all(conn)
        if plan.rank > current.rank and (plan.relax_allowed or not relax) and (plan.turbo_allowed or not turbo)
    )
