"""Operators' tools, statistics, job bookkeeping, preferences and server policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from quota_support import START, FakeClock, assert_balanced, ticket

from quotas import GuildPolicy, JobStatus, LedgerKind, Mode, Preferences, QuotaStore, Renewal, UnknownPlan

OPERATOR = 99


async def test_grant_adds_extra_time_with_the_operator_in_ledger_and_audit(store: QuotaStore, db_path: Path) -> None:
    account = await store.grant(1, 3600.0, operator_id=OPERATOR, reason="thanks for the bug report")
    assert (account.fast_remaining, account.extra_seconds) == (1440.0, 3600.0)
    entry = (await store.ledger(1, limit=1))[0]
    assert (entry.kind, entry.extra_seconds, entry.operator_id, entry.reason) == (
        LedgerKind.GRANT,
        3600.0,
        OPERATOR,
        "thanks for the bug report",
    )
    audit = (await store.audit(limit=1))[0]
    assert (audit.action, audit.operator_id, audit.user_id) == ("grant", OPERATOR, 1)
    assert json.loads(audit.detail)["applied"] == 3600.0
    assert_balanced(db_path)


async def test_a_negative_grant_takes_extra_then_plan_time_and_stops_at_zero(store: QuotaStore, db_path: Path) -> None:
    await store.grant(1, 100.0, operator_id=OPERATOR, reason="gift")
    account = await store.grant(1, -300.0, operator_id=OPERATOR, reason="abuse")
    assert (account.fast_remaining, account.extra_seconds) == (1240.0, 0.0)
    account = await store.grant(1, -5000.0, operator_id=OPERATOR, reason="abuse")
    assert (account.fast_remaining, account.extra_seconds) == (0.0, 0.0)
    assert json.loads((await store.audit(limit=1))[0].detail)["applied"] == -1240.0
    assert_balanced(db_path)


async def test_reset_refills_the_period_allowance(store: QuotaStore, db_path: Path) -> None:
    await store.set_plan(1, "standard", operator_id=OPERATOR)
    await store.reserve(ticket("j", units=10_000))
    await store.settle("j", gpu_seconds=500.0, result="{}")
    account = await store.reset(1, operator_id=OPERATOR)
    assert (account.fast_remaining, account.fast_period_total) == (15 * 3600.0, 15 * 3600.0)
    entry = (await store.ledger(1, limit=1))[0]
    assert (entry.kind, entry.seconds, entry.operator_id) == (LedgerKind.ADJUST, 500.0, OPERATOR)
    assert_balanced(db_path)


async def test_update_plan_changes_the_row_and_validates(store: QuotaStore) -> None:
    updated = await store.update_plan(
        "basic", operator_id=OPERATOR, relax_allowed=True, fast_seconds=7200.0, renewal="none"
    )
    assert (updated.relax_allowed, updated.fast_seconds, updated.renewal) == (True, 7200.0, Renewal.NONE)
    assert next(p for p in await store.plans() if p.name == "basic") == updated
    assert [p.name for p in await store.plans()] == ["free", "basic", "standard", "pro", "mega"]
    with pytest.raises(TypeError, match="unknown plan field"):
        await store.update_plan("basic", operator_id=OPERATOR, colour="blue")
    with pytest.raises(TypeError, match="max_queued"):
        await store.update_plan("basic", operator_id=OPERATOR, max_queued=True)
    with pytest.raises(ValueError, match="must be >= 0"):
        await store.update_plan("basic", operator_id=OPERATOR, max_queued=-1)
    with pytest.raises(ValueError):
        await store.update_plan("basic", operator_id=OPERATOR, renewal="weekly")
    with pytest.raises(UnknownPlan):
        await store.update_plan("gold", operator_id=OPERATOR, max_queued=1)
    assert next(p for p in await store.plans() if p.name == "basic") == updated


async def test_a_changed_allowance_applies_from_the_next_renewal(store: QuotaStore, clock: FakeClock) -> None:
    await store.set_plan(1, "basic", operator_id=OPERATOR)
    await store.update_plan("basic", operator_id=OPERATOR, fast_seconds=1000.0)
    assert (await store.account(1)).fast_remaining == 3.3 * 3600
    clock.advance(days=31)
    assert (await store.account(1)).fast_remaining == 1000.0


async def test_stats_count_jobs_images_gpu_time_and_users(store: QuotaStore, clock: FakeClock) -> None:
    await store.set_plan(2, "pro", operator_id=OPERATOR)
    for job, user in (("a", 1), ("b", 1), ("c", 2)):
        await store.reserve(ticket(job, user_id=user))
    await store.settle("a", gpu_seconds=3.0, result="{}")
    await store.refund("b", reason="failed")
    clock.advance(days=2)
    await store.account(3)

    stats = await store.stats(since=START)

    assert stats.jobs_by_status == {
        JobStatus.QUEUED: 1,
        JobStatus.RUNNING: 0,
        JobStatus.SUCCEEDED: 1,
        JobStatus.FAILED: 1,
        JobStatus.CANCELLED: 0,
    }
    assert (stats.images, stats.gpu_seconds, stats.charged_seconds) == (4, 3.0, 3.0)
    assert (stats.users_by_plan, stats.active_users, stats.new_users) == ({"free": 2, "pro": 1}, 2, 3)
    later = await store.stats(since=clock.now)
    assert (sum(later.jobs_by_status.values()), later.active_users, later.new_users) == (0, 0, 1)


async def test_job_bookkeeping_for_restarts(store: QuotaStore, clock: FakeClock) -> None:
    await store.set_plan(1, "mega", operator_id=OPERATOR)
    for job in ("a", "b", "c", "d", "e"):
        await store.reserve(ticket(job))
        clock.advance(seconds=1)
    await store.mark_running("a")
    await store.mark_running("a")
    await store.set_message("b", channel_id=10, message_id=20)
    await store.settle("c", gpu_seconds=1.0, result='{"images": ["c.png"]}')
    await store.refund("d", reason="failed: out_of_memory")
    await store.refund("e", reason="channel unreachable", told=True)  # the command's reply said so

    assert [(j.job_id, j.status) for j in await store.open_jobs()] == [
        ("a", JobStatus.RUNNING),
        ("b", JobStatus.QUEUED),
    ]
    assert [(j.job_id, j.status) for j in await store.untold_jobs()] == [
        ("c", JobStatus.SUCCEEDED),
        ("d", JobStatus.FAILED),
    ]
    await store.mark_delivered("c", message_id=30)
    await store.mark_told("d")
    await store.refund("d", reason="failed: out_of_memory")  # a repeated refund does not make it untold again
    assert await store.untold_jobs() == []
    record = await store.job("b")
    assert record is not None and (record.channel_id, record.message_id, record.request) == (
        10,
        20,
        '{"prompt": "a cat"}',
    )
    assert [j.job_id for j in await store.recent_jobs(1, limit=2)] == ["e", "d"]
    assert await store.job("nope") is None


async def test_preferences_and_options(store: QuotaStore) -> None:
    assert await store.preferences(1) == Preferences()
    prefs = await store.update_preferences(1, aspect="16:9", stylize=250, remix=True, suffix="--chaos 10")
    assert (prefs.mode, prefs.aspect, prefs.stylize, prefs.remix, prefs.private) == (
        Mode.FAST,
        "16:9",
        250,
        True,
        False,
    )
    await store.set_mode(1, Mode.TURBO)
    await store.set_option(1, "mine", "--ar 2:3 --s 750")
    await store.set_option(1, "gone", "x")
    await store.set_option(1, "gone", None)
    prefs = await store.preferences(1)
    assert (prefs.mode, prefs.suffix, dict(prefs.options)) == (Mode.TURBO, "--chaos 10", {"mine": "--ar 2:3 --s 750"})
    with pytest.raises(TypeError, match="unknown preference"):
        await store.update_preferences(1, colour="red")
    with pytest.raises(TypeError):
        await store.update_preferences(1, stylize=True)
    with pytest.raises(ValueError):
        await store.update_preferences(1, mode="warp")
    assert await store.open_jobs() == [] and (await store.ledger(1)) == []  # preferences never touch quotas


async def test_guild_policies(store: QuotaStore) -> None:
    assert await store.guild_policy(5) == GuildPolicy(guild_id=5)
    policy = await store.update_guild_policy(5, allowed_channel_ids=[7, 8], nsfw_in_age_restricted=True)
    assert policy == GuildPolicy(guild_id=5, allowed_channel_ids=frozenset({7, 8}), nsfw_in_age_restricted=True)
    policy = await store.update_guild_policy(5, author_only_buttons=False)
    assert (policy.allowed_channel_ids, policy.author_only_buttons) == (frozenset({7, 8}), False)
    assert (await store.update_guild_policy(5, allowed_channel_ids=[])).allowed_channel_ids == frozenset()
    with pytest.raises(TypeError):
        await store.update_guild_policy(5, allowed_channel_ids=["general"])
    assert await store.guild_policy(6) == GuildPolicy(guild_id=6)
