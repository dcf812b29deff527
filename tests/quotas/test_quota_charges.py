"""Reserve, settle and refund: what each holds, charges and returns, and that retries change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from quota_support import FakeClock, assert_balanced, ticket

from quotas import (
    AccountTooNew,
    Banned,
    Cooldown,
    JobStatus,
    LaneNotAllowed,
    LedgerKind,
    LimitReached,
    Mode,
    OutOfFastTime,
    QuotaSettings,
    QuotaStore,
    UnknownJob,
)

OPERATOR = 99


async def drain(store: QuotaStore, user_id: int = 1) -> None:
    """Empty both buckets of the user's balance."""
    await store.grant(user_id, -1e9, operator_id=OPERATOR, reason="test: empty the balance")


async def test_reserve_holds_the_estimate_and_settle_returns_the_rest(store: QuotaStore, db_path: Path) -> None:
    reservation = await store.reserve(ticket("j1", units=200))
    assert (reservation.mode, reservation.reserved_seconds, reservation.fell_back_to_relax) == (Mode.FAST, 10.0, False)
    assert (await store.account(1)).fast_remaining == 1430.0
    assert_balanced(db_path)

    charged = await store.settle("j1", gpu_seconds=4.0, result='{"files": []}')

    assert charged == 4.0
    account = await store.account(1)
    assert account.fast_remaining == 1436.0
    assert (account.lifetime_images, account.lifetime_gpu_seconds) == (4, 4.0)
    job = await store.job("j1")
    assert job is not None
    assert (job.status, job.charged_seconds, job.reserved_seconds, job.result) == (
        JobStatus.SUCCEEDED,
        4.0,
        10.0,
        '{"files": []}',
    )
    assert [e.kind for e in await store.ledger(1)] == [LedgerKind.SETTLE, LedgerKind.RESERVE, LedgerKind.GRANT]
    assert_balanced(db_path)


async def test_retried_settle_charges_once(store: QuotaStore, db_path: Path) -> None:
    await store.reserve(ticket("j1"))
    first = await store.settle("j1", gpu_seconds=3.0, result="{}")
    ledger = await store.ledger(1)

    again = await store.settle("j1", gpu_seconds=30.0, result="{}")

    assert first == again == 3.0
    assert await store.ledger(1) == ledger
    assert (await store.account(1)).fast_remaining == 1437.0
    assert_balanced(db_path)


async def test_refund_returns_the_reservation_once(store: QuotaStore, db_path: Path) -> None:
    await store.reserve(ticket("j1", units=300))
    assert await store.refund("j1", reason="out of memory") == 15.0
    assert await store.refund("j1", reason="out of memory") == 15.0
    assert (await store.account(1)).fast_remaining == 1440.0
    job = await store.job("j1")
    assert job is not None and (job.status, job.failure) == (JobStatus.FAILED, "out of memory")
    assert [e.kind for e in await store.ledger(1)].count(LedgerKind.REFUND) == 1
    assert_balanced(db_path)


async def test_refund_with_reason_cancelled_marks_the_job_cancelled(store: QuotaStore) -> None:
    await store.reserve(ticket("j1"))
    await store.refund("j1", reason="cancelled")
    job = await store.job("j1")
    assert job is not None and job.status is JobStatus.CANCELLED


async def test_settle_after_refund_and_refund_after_settle_change_nothing(store: QuotaStore, db_path: Path) -> None:
    await store.reserve(ticket("a"))
    await store.reserve(ticket("b"))
    await store.refund("a", reason="failed")
    await store.settle("b", gpu_seconds=2.0, result="{}")
    before = await store.ledger(1)

    assert await store.settle("a", gpu_seconds=2.0, result="{}") == 0.0
    assert await store.refund("b", reason="failed") == 0.0

    assert await store.ledger(1) == before
    statuses = [(j.job_id, j.status) for j in await store.recent_jobs(1)]
    assert sorted(statuses) == [("a", JobStatus.FAILED), ("b", JobStatus.SUCCEEDED)]
    assert_balanced(db_path)


async def test_reserving_a_job_id_again_returns_the_first_reservation(store: QuotaStore) -> None:
    first = await store.reserve(ticket("j1"))
    assert await store.reserve(ticket("j1")) == first
    assert (await store.account(1)).fast_remaining == 1440.0 - first.reserved_seconds
    with pytest.raises(ValueError, match="belongs to user 1"):
        await store.reserve(ticket("j1", user_id=2))


async def test_turbo_costs_twice_at_reserve_and_settle(store: QuotaStore, db_path: Path) -> None:
    await store.set_plan(1, "basic", operator_id=OPERATOR)
    reservation = await store.reserve(ticket("t", mode=Mode.TURBO))
    assert (reservation.mode, reservation.reserved_seconds) == (Mode.TURBO, 10.0)
    assert await store.estimate(1, 100, Mode.TURBO) == 10.0
    assert await store.settle("t", gpu_seconds=3.0, result="{}") == 6.0
    assert (await store.account(1)).fast_remaining == 11874.0
    assert_balanced(db_path)


@pytest.mark.parametrize(("plan", "mode"), [("free", Mode.TURBO), ("free", Mode.RELAX), ("basic", Mode.RELAX)])
async def test_a_mode_outside_the_plan_is_refused_with_the_plans_that_have_it(
    store: QuotaStore, plan: str, mode: Mode
) -> None:
    await store.set_plan(1, plan, operator_id=OPERATOR)
    with pytest.raises(LaneNotAllowed) as refused:
        await store.reserve(ticket("j", mode=mode))
    assert (refused.value.mode, refused.value.plan) == (mode, plan)
    assert refused.value.upgrades and plan not in refused.value.upgrades
    assert await store.open_jobs() == []


async def test_a_default_mode_the_plan_lost_falls_back_to_fast(store: QuotaStore) -> None:
    await store.set_plan(1, "standard", operator_id=OPERATOR)
    await store.set_mode(1, Mode.RELAX)
    await store.set_plan(1, "basic", operator_id=OPERATOR)
    assert (await store.account(1)).mode is Mode.FAST
    assert (await store.reserve(ticket("j"))).mode is Mode.FAST


async def test_relax_costs_nothing_and_counts_relax_use(store: QuotaStore, db_path: Path) -> None:
    await store.set_plan(1, "standard", operator_id=OPERATOR)
    await store.set_mode(1, Mode.RELAX)
    reservation = await store.reserve(ticket("r"))
    assert (reservation.mode, reservation.reserved_seconds, reservation.relax_delay_seconds) == (Mode.RELAX, 0.0, 0.0)
    assert await store.settle("r", gpu_seconds=40.0, result="{}") == 0.0
    account = await store.account(1)
    assert (account.fast_remaining, account.relax_seconds_period) == (15 * 3600, 40.0)
    assert_balanced(db_path)


async def test_relax_delay_grows_with_relax_use_past_five_hours(store: QuotaStore) -> None:
    await store.set_plan(1, "mega", operator_id=OPERATOR)
    delays = []
    for hours in (4.0, 1.5, 1.0):  # cumulative relax use: 4 h, 5.5 h, 6.5 h
        job = f"r{hours}"
        delays.append((await store.reserve(ticket(job, mode=Mode.RELAX))).relax_delay_seconds)
        await store.settle(job, gpu_seconds=hours * 3600, result="{}")
    delays.append((await store.reserve(ticket("last", mode=Mode.RELAX))).relax_delay_seconds)
    assert delays == [0.0, 0.0, 30.0, 90.0]


def test_relax_delay_curve_is_capped() -> None:
    settings = QuotaSettings()
    assert [settings.relax_delay(h * 3600) for h in (0, 5, 6, 10, 100)] == [0.0, 0.0, 60.0, 300.0, 600.0]


async def test_out_of_fast_time_falls_back_to_relax_when_the_plan_has_it(store: QuotaStore, db_path: Path) -> None:
    await store.set_plan(1, "standard", operator_id=OPERATOR)
    await drain(store)
    reservation = await store.reserve(ticket("j"))
    assert (reservation.mode, reservation.fell_back_to_relax, reservation.reserved_seconds) == (Mode.RELAX, True, 0.0)
    job = await store.job("j")
    assert job is not None and (job.mode, job.fell_back_to_relax) == (Mode.RELAX, True)
    assert_balanced(db_path)


async def test_out_of_fast_time_without_relax_says_what_is_left(store: QuotaStore, clock: FakeClock) -> None:
    await store.set_plan(1, "basic", operator_id=OPERATOR)
    await drain(store)
    await store.grant(1, 7.0, operator_id=OPERATOR, reason="a little")
    with pytest.raises(OutOfFastTime) as refused:
        await store.reserve(ticket("j", mode=Mode.TURBO, units=100))
    error = refused.value
    assert (error.remaining_seconds, error.needed_seconds, error.plan) == (7.0, 10.0, "basic")
    assert error.fast_would_fit
    assert error.renews_at is not None and error.renews_at > clock.now
    assert error.upgrades == ("standard", "pro", "mega")
    assert await store.open_jobs() == []


async def test_extra_time_is_spent_after_plan_time(store: QuotaStore, db_path: Path) -> None:
    await store.grant(1, 100.0, operator_id=OPERATOR, reason="contest prize")
    await store.reserve(ticket("j1", units=28_000))  # 1400 s of the 1440 s of plan time
    await store.reserve(ticket("j2", units=2_000))  # 100 s: 40 s of plan time, then 60 s of extra time
    account = await store.account(1)
    assert (account.fast_remaining, account.extra_seconds) == (0.0, 40.0)
    reserve = (await store.ledger(1, limit=1))[0]
    assert (reserve.plan_seconds, reserve.extra_seconds, reserve.balance_after) == (-40.0, -60.0, 40.0)

    await store.settle("j2", gpu_seconds=50.0, result="{}")  # 40 s from plan time, 10 s from extra time

    account = await store.account(1)
    assert (account.fast_remaining, account.extra_seconds) == (0.0, 90.0)
    await store.refund("j1", reason="failed")
    assert (await store.account(1)).fast_remaining == 1400.0
    assert_balanced(db_path)


async def test_a_job_over_its_reservation_pays_the_difference(store: QuotaStore, db_path: Path) -> None:
    await store.reserve(ticket("j", units=100))
    assert await store.settle("j", gpu_seconds=8.0, result="{}") == 8.0
    assert (await store.account(1)).fast_remaining == 1432.0
    assert_balanced(db_path)


async def test_a_job_over_its_reservation_never_drives_the_balance_negative(store: QuotaStore, db_path: Path) -> None:
    await drain(store)
    await store.grant(1, 6.0, operator_id=OPERATOR, reason="six seconds")
    await store.reserve(ticket("j", units=100))  # holds 5 of the 6 s

    charged = await store.settle("j", gpu_seconds=20.0, result="{}")

    assert charged == 6.0
    account = await store.account(1)
    assert (account.fast_remaining, account.extra_seconds) == (0.0, 0.0)
    job = await store.job("j")
    assert job is not None and (job.charged_seconds, job.unpaid_seconds, job.gpu_seconds) == (6.0, 14.0, 20.0)
    assert "unpaid" in (await store.ledger(1, limit=1))[0].reason
    assert_balanced(db_path)


async def test_seconds_per_unit_learns_from_finished_jobs(store: QuotaStore) -> None:
    assert await store.seconds_per_unit() == 0.05
    await store.reserve(ticket("a", units=100))
    await store.settle("a", gpu_seconds=10.0, result="{}")  # first sample replaces the default: 0.1
    assert await store.seconds_per_unit() == pytest.approx(0.1)
    await store.reserve(ticket("b", units=100))
    assert (await store.job("b")).reserved_seconds == 10.0  # type: ignore[union-attr]
    await store.settle("b", gpu_seconds=20.0, result="{}")  # 0.2 x 0.2 + 0.8 x 0.1
    assert await store.seconds_per_unit() == pytest.approx(0.12)
    assert await store.estimate(1, 100) == 12.0


async def test_one_odd_job_moves_seconds_per_unit_at_most_tenfold(store: QuotaStore) -> None:
    await store.reserve(ticket("tiny", units=1e-300))
    await store.settle("tiny", gpu_seconds=100.0, result="{}")
    assert await store.seconds_per_unit() == pytest.approx(0.5)
    await store.reserve(ticket("free lunch", units=1000))
    await store.settle("free lunch", gpu_seconds=0.0, result="{}")  # no sample
    assert await store.seconds_per_unit() == pytest.approx(0.5)


async def test_limits_count_open_jobs_per_lane_and_in_all(store: QuotaStore) -> None:
    await store.set_plan(1, "standard", operator_id=OPERATOR)
    await store.update_plan("standard", operator_id=OPERATOR, max_queued=5)
    for n in range(3):
        await store.reserve(ticket(f"f{n}", mode=Mode.FAST))
    with pytest.raises(LimitReached) as fast_full:
        await store.reserve(ticket("f3", mode=Mode.TURBO))
    assert (fast_full.value.kind, fast_full.value.limit, fast_full.value.mode) == ("concurrent", 3, Mode.TURBO)
    await store.reserve(ticket("r0", mode=Mode.RELAX))
    await store.reserve(ticket("r1", mode=Mode.RELAX))
    with pytest.raises(LimitReached) as queue_full:
        await store.reserve(ticket("r2", mode=Mode.RELAX))
    assert (queue_full.value.kind, queue_full.value.limit) == ("queued", 5)
    await store.mark_running("f0")
    await store.settle("f0", gpu_seconds=1.0, result="{}")
    await store.reserve(ticket("r2", mode=Mode.RELAX))
    assert len(await store.open_jobs()) == 5


async def test_banned_users_are_refused_until_unbanned(store: QuotaStore) -> None:
    await store.ban(1, operator_id=OPERATOR, reason="spam")
    with pytest.raises(Banned) as refused:
        await store.reserve(ticket("j"))
    assert refused.value.reason == "spam"
    assert (await store.account(1)).banned
    await store.unban(1, operator_id=OPERATOR)
    await store.reserve(ticket("j"))
    assert [a.action for a in await store.audit()] == ["unban", "ban"]


async def test_free_plan_cooldown_between_jobs(db_path: Path, clock: FakeClock) -> None:
    store = await QuotaStore.open(db_path, settings=QuotaSettings(free_cooldown_seconds=60), clock=clock)
    try:
        await store.reserve(ticket("a"))
        clock.advance(seconds=20)
        with pytest.raises(Cooldown) as refused:
            await store.reserve(ticket("b"))
        assert refused.value.retry_after_seconds == pytest.approx(40.0)
        await store.set_plan(2, "basic", operator_id=OPERATOR)
        await store.reserve(ticket("c", user_id=2))
        await store.reserve(ticket("d", user_id=2))  # paid plans have no cooldown
        clock.advance(seconds=40)
        await store.reserve(ticket("b"))
    finally:
        await store.close()


async def test_free_allowance_needs_an_old_enough_discord_account(db_path: Path, clock: FakeClock) -> None:
    store = await QuotaStore.open(db_path, settings=QuotaSettings(min_account_age_days=7), clock=clock)
    try:
        created = clock.now.replace(day=29)  # two days old
        with pytest.raises(AccountTooNew) as refused:
            await store.reserve(ticket("a", created=created))
        assert (refused.value.min_days, refused.value.eligible_at) == (7, created.replace(month=2, day=5))
        await store.reserve(ticket("b", created=clock.now.replace(month=1, day=1)))
        await store.set_plan(3, "basic", operator_id=OPERATOR)
        await store.reserve(ticket("c", user_id=3, created=created))  # paid plans are not checked
    finally:
        await store.close()


@pytest.mark.parametrize("call", ["settle", "refund", "mark_running", "set_message", "mark_delivered", "mark_told"])
async def test_unknown_jobs_are_reported(store: QuotaStore, call: str) -> None:
    calls = {
        "settle": lambda: store.settle("nope", gpu_seconds=1.0, result="{}"),
        "refund": lambda: store.refund("nope", reason="failed"),
        "mark_running": lambda: store.mark_running("nope"),
        "set_message": lambda: store.set_message("nope", channel_id=1, message_id=2),
        "mark_delivered": lambda: store.mark_delivered("nope", message_id=2),
        "mark_told": lambda: store.mark_told("nope"),
    }
    with pytest.raises(UnknownJob):
        await calls[call]()


async def test_settle_refuses_a_negative_gpu_time(store: QuotaStore) -> None:
    await store.reserve(ticket("j"))
    with pytest.raises(ValueError, match="gpu_seconds"):
        await store.settle("j", gpu_seconds=-1.0, result="{}")
    assert (await store.job("j")).status is JobStatus.QUEUED  # type: ignore[union-attr]


async def test_estimate_follows_the_users_mode_and_plan(store: QuotaStore) -> None:
    assert await store.estimate(1, 100) == 5.0
    await store.set_plan(1, "pro", operator_id=OPERATOR)
    await store.set_mode(1, Mode.TURBO)
    assert await store.estimate(1, 100) == 10.0
    assert await store.estimate(1, 100, Mode.RELAX) == 0.0
    await store.set_plan(1, "free", operator_id=OPERATOR)
    assert await store.estimate(1, 100) == 5.0  # turbo is not in the free plan: the default is fast
