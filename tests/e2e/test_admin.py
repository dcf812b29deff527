"""/admin through Discord: only operators (never a server's own administrators), and every action is recorded."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from quotas import JobStatus, LedgerKind, QuotaStore
from tests.e2e.account_support import (
    answer,
    button,
    fixed_cost_queue,
    imagine,
    job_record,
    slash_answer,
)
from tests.e2e.conftest import OWNER_ID, World, songe_inprocess

pytestmark = pytest.mark.e2e

NOT_OPERATOR = "Only the bot's operators can use this command"

# Each /admin subcommand with valid options (built from the world's users).
SUBCOMMANDS: dict[str, Callable[[World], dict[str, Any]]] = {
    "user": lambda w: {"user": w.alice},
    "grant": lambda w: {"user": w.alice, "hours": 5.0, "reason": "a gift"},
    "plan": lambda w: {"user": w.alice, "plan": "mega"},
    "reset": lambda w: {"user": w.alice},
    "ban": lambda w: {"user": w.alice, "reason": "none"},
    "unban": lambda w: {"user": w.alice},
    "plans": lambda w: {},
    "plan-edit": lambda w: {"plan": "free", "field": "max_queued", "value": "99"},
    "stats": lambda w: {},
    "pause": lambda w: {},
    "resume": lambda w: {},
    "backup": lambda w: {},
}


async def test_every_admin_subcommand_is_covered(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]):
        (admin,) = [c for c in world.server.commands(world.guild) if c["name"] == "admin"]
    assert {option["name"] for option in admin["options"]} == set(SUBCOMMANDS)


@pytest.mark.parametrize("subcommand", sorted(SUBCOMMANDS))
async def test_a_server_administrator_who_is_not_an_operator_is_refused(
    world: World, tmp_path: Path, subcommand: str
) -> None:
    _engine, queue = fixed_cost_queue()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=queue) as bot:
        plans = await bot.store.plans()
        itx = await world.server.slash(
            world.admin, world.channel, "admin", subcommand, **SUBCOMMANDS[subcommand](world)
        )
        refusal = await answer(itx)
        assert NOT_OPERATOR in refusal.content
        assert await bot.store.audit() == []
        assert await bot.store.plans() == plans
        assert await bot.store.ledger(world.alice.id) == []
        assert not (tmp_path / "data" / "backups").exists()
        # The queue was not paused: a job still runs.
        await imagine(world, world.bob, "a lighthouse")


async def test_an_operators_grant_shows_in_the_users_info_and_ledger(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        alice, operator = world.alice, world.operator
        ran = await imagine(world, alice, "a tin robot")
        text = await slash_answer(world, operator, "admin", "grant", user=alice, hours=1.5, reason="bug report, thanks")
        assert f"Granted 1.5 h to <@{alice.id}>" in text and "Extra time (never expires): 1.5 h" in text

        info = await slash_answer(world, alice, "info")
        assert "Extra time (never expires): 1.5 h" in info
        ledger = await slash_answer(world, alice, "ledger")
        assert "grant +1.5 h — bug report, thanks" in ledger
        assert f"charged `{ran.job_id[:8]}`" in ledger and f"reserved `{ran.job_id[:8]}`" in ledger

        grant = next(e for e in await bot.store.ledger(alice.id) if e.reason == "bug report, thanks")
        assert (grant.kind, grant.seconds, grant.operator_id) == (LedgerKind.GRANT, 5400.0, operator.id)
        (audit,) = await bot.store.audit()
        assert (audit.action, audit.operator_id, audit.user_id) == ("grant", operator.id, alice.id)


async def test_the_application_owner_is_an_operator(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        owner = world.server.owner
        assert owner.id == OWNER_ID and owner.id not in bot.settings.operator_ids
        text = await slash_answer(world, owner, "admin", "grant", user=world.bob, hours=2.0, reason="from the owner")
        assert "Granted 2.0 h" in text
        (audit,) = await bot.store.audit()
        assert (audit.action, audit.operator_id) == ("grant", OWNER_ID)


async def test_plan_reset_plan_edit_and_plans_work_for_an_operator_and_are_audited(
    world: World, tmp_path: Path
) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        bob, operator = world.bob, world.operator
        text = await slash_answer(world, operator, "admin", "plan", user=bob, plan="pro", until="2099-01-31")
        assert f"<@{bob.id}> is now on **pro**" in text
        account = await bot.store.account(bob.id)
        assert account.plan.name == "pro" and account.plan_until is not None and account.plan_until.year == 2099
        assert account.fast_remaining == 30 * 3600

        ran = await imagine(world, bob, "a copper kettle")
        assert (await bot.store.account(bob.id)).fast_remaining < 30 * 3600
        assert "allowance was refilled" in await slash_answer(world, operator, "admin", "reset", user=bob)
        assert (await bot.store.account(bob.id)).fast_remaining == 30 * 3600
        assert (await job_record(bot, ran.job_id)).status is JobStatus.SUCCEEDED

        text = await slash_answer(
            world, operator, "admin", "plan-edit", plan="basic", field="max_concurrent_fast", value="5"
        )
        assert "`max_concurrent_fast` updated" in text
        assert next(p for p in await bot.store.plans() if p.name == "basic").max_concurrent_fast == 5
        bad = await slash_answer(world, operator, "admin", "plan-edit", plan="basic", field="max_queued", value="lots")
        assert "`max_queued` expects a whole number" in bad
        unknown = await slash_answer(world, operator, "admin", "plan", user=bob, plan="platinum")
        assert "There is no plan named platinum" in unknown and "mega" in unknown and "no plan '" not in unknown

        listing = await slash_answer(world, operator, "admin", "plans")
        for name in ("free", "basic", "standard", "pro", "mega"):
            assert f"**{name}**" in listing
        assert "5 fast / 0 relax at once" in listing

        audit = {entry.action: entry for entry in await bot.store.audit()}
        assert set(audit) == {"set_plan", "reset", "update_plan"}
        assert all(entry.operator_id == operator.id for entry in audit.values())
        assert json.loads(audit["update_plan"].detail)["changes"] == {"max_concurrent_fast": 5}
        by_operator = [e for e in await bot.store.ledger(bob.id, limit=50) if e.operator_id == operator.id]
        assert {e.kind for e in by_operator} >= {LedgerKind.RENEWAL, LedgerKind.ADJUST}


async def test_a_banned_user_is_refused_in_every_server_and_on_buttons_until_unbanned(
    world: World, tmp_path: Path
) -> None:
    server = world.server
    other_guild = server.add_guild("Elsewhere")
    elsewhere = server.add_channel(other_guild, "gallery")
    server.add_member(other_guild, world.bob)
    # No SONGE_GUILD_ID: the commands are synced globally, so they work in both servers.
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1], SONGE_GUILD_ID="") as bot:
        bob, operator = world.bob, world.operator
        await server.wait_until(lambda: any(c["name"] == "imagine" for c in server.commands()), what="global commands")
        grid = (await imagine(world, world.alice, "a stone bridge")).grid
        text = await slash_answer(world, operator, "admin", "ban", user=bob, reason="spam")
        assert f"<@{bob.id}> is banned" in text

        for channel in (world.channel, elsewhere):
            refusal = await slash_answer(world, bob, "imagine", where=channel, prompt="a stone bridge")
            assert "You cannot use Songe" in refusal
        click = await server.click(bob, grid, button(grid, "V1"))
        assert "You cannot use Songe" in (await answer(click)).content
        assert "⛔ Banned" in await slash_answer(world, operator, "admin", "user", user=bob)
        assert await bot.store.recent_jobs(bob.id) == []

        assert "no longer banned" in await slash_answer(world, operator, "admin", "unban", user=bob)
        await imagine(world, bob, "a stone bridge", channel=elsewhere)
        actions = [(e.action, e.operator_id, e.user_id) for e in await bot.store.audit()]
        assert actions == [("unban", operator.id, bob.id), ("ban", operator.id, bob.id)]


async def test_stats_show_the_jobs_images_and_gpu_time(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue(5.0)[1]) as bot:
        await imagine(world, world.alice, "a glass whale")
        await imagine(world, world.bob, "a glass whale")
        text = await slash_answer(world, world.operator, "admin", "stats", days=7)
        assert "**Last 7 days**" in text
        assert "2 succeeded" in text and "Images: 8" in text and "GPU time: 10 s" in text
        assert "2 active" in text and "free 2" in text
        assert "Waiting or running now: 0" in text
        assert "Stats(" not in text and "JobStatus" not in text
        assert await bot.store.audit() == []  # reading is not an action


async def test_a_job_submitted_while_paused_waits_and_runs_after_resume(world: World, tmp_path: Path) -> None:
    engine, queue = fixed_cost_queue()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=queue) as bot:
        server, operator = world.server, world.operator
        assert "Queue paused" in await slash_answer(world, operator, "admin", "pause")
        itx = await server.slash(world.alice, world.channel, "imagine", prompt="a sleeping fox")
        accepted = await answer(itx)
        assert "queued" in accepted.content
        (record,) = await bot.store.recent_jobs(world.alice.id)
        with pytest.raises(TimeoutError):  # a bounded look for something that must not happen
            await server.wait_for_message(world.channel, lambda m: bool(m.attachments), timeout=0.3)
        assert engine.attempts == [] and (await job_record(bot, record.job_id)).status is JobStatus.QUEUED
        stats = await slash_answer(world, operator, "admin", "stats")
        assert "Waiting or running now: 1" in stats

        assert "Queue resumed" in await slash_answer(world, operator, "admin", "resume")
        await server.wait_for_message(
            world.channel, lambda m: bool(m.attachments) and record.job_id in str(m.custom_ids), timeout=20
        )
        assert (await job_record(bot, record.job_id)).status is JobStatus.SUCCEEDED
        actions = [(e.action, e.operator_id) for e in await bot.store.audit()]
        assert actions == [("resume", operator.id), ("pause", operator.id)]


async def test_backup_writes_a_private_consistent_copy(world: World, tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with songe_inprocess(world, data, queue_factory=fixed_cost_queue()[1]) as bot:
        await slash_answer(world, world.operator, "admin", "grant", user=world.alice, hours=1.0, reason="before backup")
        text = await slash_answer(world, world.operator, "admin", "backup")
        (copy,) = (data / "backups").iterdir()
        assert str(copy) in text
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert stat.S_IMODE((data / "backups").stat().st_mode) == 0o700
        (entry, _grant) = await bot.store.audit()
        assert (entry.action, entry.operator_id) == ("backup", world.operator.id)
        assert json.loads(entry.detail)["path"] == str(copy)
    restored = await QuotaStore.open(copy)
    try:
        assert (await restored.account(world.alice.id)).extra_seconds == 3600
        assert await restored.verify() == []
    finally:
        await restored.close()
