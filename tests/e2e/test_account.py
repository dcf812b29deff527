"""A user's own account through Discord: /info, modes and their costs, running out of time, job limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import discord
import pytest

from bot.render import format_seconds
from quotas import JobStatus, LedgerKind, Mode
from tests.e2e.account_support import (
    COST,
    answer,
    fixed_cost_queue,
    imagine,
    job_id_from_prefix,
    job_prefix,
    job_record,
    slash_answer,
)
from tests.e2e.conftest import World, songe_inprocess

pytestmark = pytest.mark.e2e

HOUR = 3600.0


async def test_info_shows_plan_mode_fast_time_usage_and_jobs_as_the_store_has_them(
    world: World, tmp_path: Path
) -> None:
    _engine, queue = fixed_cost_queue()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=queue) as bot:
        alice = world.alice
        await bot.store.update_plan("standard", operator_id=world.operator.id, fast_seconds=120.0)
        await bot.store.set_plan(alice.id, "standard", operator_id=world.operator.id)
        await imagine(world, alice, "a fast lighthouse")
        await imagine(world, alice, "a slow lighthouse --relax")
        bot.queue.pause()
        waiting = await world.server.slash(alice, world.channel, "imagine", prompt="a queued lighthouse")
        queued = await job_record(bot, await job_id_from_prefix(bot, alice.id, job_prefix(await answer(waiting))))

        text = await slash_answer(world, alice, "info")

        account = await bot.store.account(alice.id)
        assert (account.lifetime_images, account.lifetime_gpu_seconds, account.relax_seconds_period) == (
            8,
            2 * COST,
            COST,
        )
        assert (account.queued, account.running) == (1, 0)
        assert account.fast_remaining == pytest.approx(120.0 - COST - queued.reserved_seconds)
        per_grid = 64 * 64 / 1e6 * 2 * 4 * await bot.store.seconds_per_unit()  # SONGE_RESOLUTION 64, SONGE_STEPS 2
        percent = round(100 * account.fast_remaining / 120.0)
        assert 90 <= percent <= 95
        assert account.renews_at is not None
        expected = [
            "**Plan:** standard",
            "Mode: fast",
            f"Fast time remaining: {format_seconds(account.fast_remaining)}/2.0 min ({percent}%)",
            f"About {int(account.fast_remaining / per_grid)} grids",
            f"Renews: {discord.utils.format_dt(account.renews_at, 'D')}",
            f"Lifetime usage: 8 images, {format_seconds(2 * COST)} of GPU time",
            f"Relax usage this period: {format_seconds(COST)}",
            "Queued jobs: 1 · running: 0",
        ]
        for line in expected:
            assert line in text, (line, text)


async def test_info_of_a_new_free_user_says_the_allowance_never_renews(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1], SONGE_FREE_SECONDS="60"):
        text = await slash_answer(world, world.bob, "info")
    assert "**Plan:** free" in text and "60 s/60 s (100%)" in text and "Renews: never" in text
    assert "Lifetime usage: 0 images" in text and "Queued jobs: 0 · running: 0" in text


async def test_out_of_fast_time_a_standard_user_falls_back_to_relax_and_the_job_runs(
    world: World, tmp_path: Path
) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        alice = world.alice
        await bot.store.set_plan(alice.id, "standard", operator_id=world.operator.id)
        await bot.store.grant(alice.id, -100 * HOUR, operator_id=world.operator.id, reason="spent")
        ran = await imagine(world, alice, "a moonlit harbour")
        assert "out of fast time, so this job runs in relax mode" in ran.accepted.content
        assert "in relax mode" in ran.accepted.content
        record = await job_record(bot, ran.job_id)
        assert record.mode is Mode.RELAX and record.fell_back_to_relax
        assert record.status is JobStatus.SUCCEEDED and record.charged_seconds == 0
        assert (await bot.store.account(alice.id)).relax_seconds_period == COST


async def test_out_of_fast_time_a_basic_user_is_refused_with_the_ways_out(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        bob = world.bob
        await bot.store.set_plan(bob.id, "basic", operator_id=world.operator.id)
        await bot.store.grant(bob.id, -100 * HOUR, operator_id=world.operator.id, reason="spent")
        before = len(world.server.messages(world.channel))
        text = await slash_answer(world, bob, "imagine", prompt="a moonlit harbour")
        account = await bot.store.account(bob.id)
        assert account.renews_at is not None
        assert "out of fast time" in text and "**basic**" in text
        assert "standard" in text and "pro" in text  # the plans that include relax mode
        assert discord.utils.format_dt(account.renews_at, "D") in text  # when the time comes back
        assert "operators" in text
        assert "relax mode if your plan" not in text  # no advice the plan cannot follow
        assert len(world.server.messages(world.channel)) == before
        assert await bot.store.recent_jobs(bob.id) == []


async def test_relax_is_refused_to_a_basic_user_as_a_mode_and_per_job(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        bob = world.bob
        await bot.store.set_plan(bob.id, "basic", operator_id=world.operator.id)
        text = await slash_answer(world, bob, "relax")
        assert "Relax mode is not part of the **basic** plan" in text
        assert (await bot.store.account(bob.id)).mode is Mode.FAST
        text = await slash_answer(world, bob, "imagine", prompt="a quiet field --relax")
        assert "relax mode is not part of the **basic** plan" in text
        assert await bot.store.recent_jobs(bob.id) == []


async def test_turbo_is_charged_twice_the_gpu_time_of_fast(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        alice = world.alice
        await bot.store.set_plan(alice.id, "basic", operator_id=world.operator.id)
        fast = await job_record(bot, (await imagine(world, alice, "a red kite")).job_id)
        assert "Turbo mode on" in await slash_answer(world, alice, "turbo")
        turbo = await job_record(bot, (await imagine(world, alice, "a red kite")).job_id)
    assert (fast.mode, turbo.mode) == (Mode.FAST, Mode.TURBO)
    assert fast.gpu_seconds == turbo.gpu_seconds == COST
    assert fast.charged_seconds == COST and turbo.charged_seconds == 2 * COST


async def test_per_job_flags_override_the_default_mode(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        alice = world.alice
        await bot.store.set_plan(alice.id, "standard", operator_id=world.operator.id)
        assert "Relax mode on" in await slash_answer(world, alice, "relax")
        charged = {}
        for flag, mode in (
            ("", Mode.RELAX),
            (" --fast", Mode.FAST),
            (" --turbo", Mode.TURBO),
            (" --relax", Mode.RELAX),
        ):
            ran = await imagine(world, alice, f"a paper boat{flag}")
            assert f"in {mode.value} mode" in ran.accepted.content
            record = await job_record(bot, ran.job_id)
            assert record.mode is mode
            charged[flag] = record.charged_seconds
        assert charged == {"": 0.0, " --fast": COST, " --turbo": 2 * COST, " --relax": 0.0}
        ledger = await bot.store.ledger(alice.id, limit=100)
        assert sum(-e.seconds for e in ledger if e.kind in (LedgerKind.RESERVE, LedgerKind.SETTLE)) == pytest.approx(
            3 * COST
        )


async def test_a_burst_of_twenty_imagines_admits_exactly_the_plans_concurrent_limit(
    world: World, tmp_path: Path
) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        bob = world.bob
        await bot.store.set_plan(bob.id, "basic", operator_id=world.operator.id)
        limit = (await bot.store.account(bob.id)).plan.max_concurrent_fast
        assert limit == 3
        assert "paused" in await slash_answer(world, world.operator, "admin", "pause")
        burst = await asyncio.gather(
            *(world.server.slash(bob, world.channel, "imagine", prompt=f"a lantern number {n}") for n in range(20))
        )
        answers = [await answer(itx) for itx in burst]
        accepted = [a for a in answers if "queued in fast mode" in a.content]
        refused = [a for a in answers if a not in accepted]
        assert len(accepted) == limit and len(refused) == 20 - limit
        for message in refused:
            assert f"You already have {limit} jobs running or waiting in this mode" in message.content
        jobs = await bot.store.recent_jobs(bob.id, limit=50)
        assert len(jobs) == limit and all(j.status is JobStatus.QUEUED for j in jobs)
        reserves = [e for e in await bot.store.ledger(bob.id, limit=100) if e.kind is LedgerKind.RESERVE]
        assert len(reserves) == limit
