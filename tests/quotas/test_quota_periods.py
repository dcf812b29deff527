"""Time and plans: monthly renewal without rollover, plans until a date, daily top-ups, entitlements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from quota_support import START, FakeClock, assert_balanced, ticket

from quotas import LedgerKind, Mode, QuotaSettings, QuotaStore, UnknownPlan
from quotas.units import add_months, monthly_period, to_ts

OPERATOR = 99
BASIC = 3.3 * 3600


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        (at(2026, 1, 31), 1, at(2026, 2, 28)),
        (at(2026, 1, 31), 2, at(2026, 3, 31)),
        (at(2028, 1, 30), 1, at(2028, 2, 29)),
        (at(2026, 11, 15), 3, at(2027, 2, 15)),
        (at(2026, 3, 31), -1, at(2026, 2, 28)),
    ],
)
def test_add_months_clamps_to_the_months_length(anchor: datetime, months: int, expected: datetime) -> None:
    assert add_months(anchor, months) == expected


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (at(2026, 1, 31), at(2026, 1, 31), at(2026, 2, 28)),
        (at(2026, 2, 28, 11), at(2026, 1, 31), at(2026, 2, 28)),
        (at(2026, 2, 28), at(2026, 2, 28), at(2026, 3, 31)),
        (at(2026, 5, 11), at(2026, 4, 30), at(2026, 5, 31)),
    ],
)
def test_monthly_period_falls_on_anniversaries(now: datetime, start: datetime, end: datetime) -> None:
    assert monthly_period(to_ts(at(2026, 1, 31)), to_ts(now)) == (to_ts(start), to_ts(end))


async def test_plan_time_renews_on_the_anniversary_without_rollover(
    store: QuotaStore, clock: FakeClock, db_path: Path
) -> None:
    await store.set_plan(1, "basic", operator_id=OPERATOR)
    await store.reserve(ticket("j", units=2000))
    await store.settle("j", gpu_seconds=100.0, result="{}")
    clock.now = at(2026, 2, 28, 11)
    account = await store.account(1)
    assert (account.fast_remaining, account.renews_at) == (BASIC - 100, at(2026, 2, 28))

    clock.now = at(2026, 2, 28)
    account = await store.account(1)

    assert (account.fast_remaining, account.fast_period_total, account.renews_at) == (BASIC, BASIC, at(2026, 3, 31))
    expire, renewal = sorted((await store.ledger(1, limit=2)), key=lambda e: e.id)
    assert (expire.kind, expire.seconds) == (LedgerKind.EXPIRE, -(BASIC - 100))
    assert (renewal.kind, renewal.seconds) == (LedgerKind.RENEWAL, BASIC)
    assert_balanced(db_path)


async def test_missed_months_renew_once(store: QuotaStore, clock: FakeClock) -> None:
    await store.set_plan(1, "basic", operator_id=OPERATOR)
    clock.now = at(2026, 5, 11)
    account = await store.account(1)
    assert (account.fast_remaining, account.renews_at) == (BASIC, at(2026, 5, 31))
    kinds = [e.kind for e in await store.ledger(1)]
    assert kinds.count(LedgerKind.RENEWAL) == 2  # set_plan's, then one renewal for the three months
    assert (await store.account(1)).fast_remaining == BASIC


async def test_relax_use_resets_at_renewal(store: QuotaStore, clock: FakeClock) -> None:
    await store.set_plan(1, "standard", operator_id=OPERATOR)
    await store.reserve(ticket("r", mode=Mode.RELAX))
    await store.settle("r", gpu_seconds=7 * 3600, result="{}")
    assert (await store.reserve(ticket("r2", mode=Mode.RELAX))).relax_delay_seconds == 120.0
    clock.now = at(2026, 3, 1)
    assert (await store.account(1)).relax_seconds_period == 0.0
    assert (await store.reserve(ticket("r3", mode=Mode.RELAX))).relax_delay_seconds == 0.0


async def test_extra_time_survives_renewal(store: QuotaStore, clock: FakeClock) -> None:
    await store.set_plan(1, "basic", operator_id=OPERATOR)
    await store.grant(1, 600.0, operator_id=OPERATOR, reason="gift")
    clock.now = at(2026, 4, 1)
    account = await store.account(1)
    assert (account.fast_remaining, account.extra_seconds) == (BASIC, 600.0)


async def test_a_plan_until_a_date_reverts_to_free(store: QuotaStore, clock: FakeClock, db_path: Path) -> None:
    until = START + timedelta(days=10)
    account = await store.set_plan(1, "pro", operator_id=OPERATOR, until=until)
    assert (account.plan.name, account.plan_until, account.fast_remaining) == ("pro", until, 30 * 3600.0)
    clock.advance(days=9)
    assert (await store.account(1)).plan.name == "pro"

    clock.advance(days=1)
    account = await store.account(1)

    assert (account.plan.name, account.plan_until, account.renews_at) == ("free", None, None)
    assert account.fast_remaining == 0.0
    assert (await store.ledger(1, limit=1))[0].kind is LedgerKind.EXPIRE
    assert_balanced(db_path)


async def test_set_plan_refuses_unknown_plans_and_past_dates(store: QuotaStore, clock: FakeClock) -> None:
    with pytest.raises(UnknownPlan) as unknown:
        await store.set_plan(1, "platinum", operator_id=OPERATOR)
    assert "mega" in unknown.value.known
    with pytest.raises(ValueError, match="not in the future"):
        await store.set_plan(1, "pro", operator_id=OPERATOR, until=clock.now)


@pytest.mark.parametrize(("settle_seconds", "expected_refund"), [(None, 0.0), (2.0, None)])
async def test_plan_time_reserved_before_a_renewal_does_not_come_back(
    store: QuotaStore, clock: FakeClock, db_path: Path, settle_seconds: float | None, expected_refund: float | None
) -> None:
    await store.set_plan(1, "basic", operator_id=OPERATOR)
    await store.reserve(ticket("j", units=100))  # 5 s of January's plan time
    clock.now = at(2026, 3, 1)
    assert (await store.account(1)).fast_remaining == BASIC

    if settle_seconds is None:
        assert await store.refund("j", reason="failed") == expected_refund
        assert await store.refund("j", reason="failed") == expected_refund
    else:
        assert await store.settle("j", gpu_seconds=settle_seconds, result="{}") == settle_seconds

    assert (await store.account(1)).fast_remaining == BASIC
    assert (await store.ledger(1, limit=1))[0].kind is LedgerKind.EXPIRE
    assert_balanced(db_path)


async def test_free_accounts_are_topped_up_daily(db_path: Path, clock: FakeClock) -> None:
    settings = QuotaSettings(free_trial_seconds=0.0, free_daily_topup_seconds=300.0)
    store = await QuotaStore.open(db_path, settings=settings, clock=clock)
    try:
        assert (await store.account(1)).fast_remaining == 300.0
        await store.reserve(ticket("a", units=4000))  # 200 s
        await store.settle("a", gpu_seconds=200.0, result="{}")
        clock.advance(hours=6)  # still January 31 in UTC
        assert (await store.account(1)).fast_remaining == 100.0
        clock.advance(hours=6)
        assert (await store.account(1)).fast_remaining == 300.0
        rows = len(await store.ledger(1, limit=100))
        clock.advance(days=1)
        assert (await store.account(1)).fast_remaining == 300.0
        assert len(await store.ledger(1, limit=100)) == rows  # nothing to top up
    finally:
        await store.close()
    assert_balanced(db_path)


async def test_entitlements_set_the_plan_and_lapse_back_to_free(store: QuotaStore, db_path: Path) -> None:
    await store.sync_entitlement(1, "pro")
    account = await store.account(1)
    assert (account.plan.name, account.fast_remaining) == ("pro", 30 * 3600.0)
    rows, audit = len(await store.ledger(1, limit=100)), len(await store.audit())

    await store.sync_entitlement(1, "pro")
    await store.sync_entitlement(2, None)

    assert (len(await store.ledger(1, limit=100)), len(await store.audit())) == (rows, audit)
    assert (await store.stats(since=START)).new_users == 1  # user 2 got no account
    await store.sync_entitlement(1, None)
    assert (await store.account(1)).plan.name == "free"
    assert_balanced(db_path)


async def test_a_lapsed_entitlement_leaves_an_operators_plan_alone(store: QuotaStore) -> None:
    await store.sync_entitlement(1, "basic")
    await store.set_plan(1, "mega", operator_id=OPERATOR)
    await store.sync_entitlement(1, None)
    assert (await store.account(1)).plan.name == "mega"
