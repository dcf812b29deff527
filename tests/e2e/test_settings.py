"""Preferences and server policy through Discord: /settings, /prefer, /show, /help and /server."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.job_types import Envelope
from quotas import JobStatus, Mode
from tests.e2e.account_support import (
    answer,
    button,
    fixed_cost_queue,
    imagine,
    job_record,
    result_of,
    select,
    slash_answer,
)
from tests.e2e.conftest import World, has_buttons, image_size, songe_inprocess
from tests.support.fake_discord import FakeMessage
from tests.support.fake_discord.messages import walk_components

pytestmark = pytest.mark.e2e

TEXT_INPUT = 4


async def _panel(world: World) -> FakeMessage:
    """Alice's /settings panel."""
    return await answer(await world.server.slash(world.alice, world.channel, "settings"))


async def test_the_default_aspect_chosen_in_settings_applies_to_the_next_imagine(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        panel = await _panel(world)
        assert "aspect: 1:1" in panel.content
        click = await world.server.click(world.alice, panel, select(panel, "Default aspect ratio"), values=["16:9"])
        await click.response()
        await world.server.wait_until(lambda: "aspect: 16:9" in panel.content, what="the panel to show 16:9")
        assert (await bot.store.preferences(world.alice.id)).aspect == "16:9"

        ran = await imagine(world, world.alice, "a wide valley")
        width, height = image_size(ran.grid.attachments[0].data)
        assert width / height == pytest.approx(16 / 9, rel=0.1)
        assert "--ar 16:9" in ran.grid.content
        square = await imagine(world, world.alice, "a wide valley --ar 1:1")
        assert image_size(square.grid.attachments[0].data)[0] == image_size(square.grid.attachments[0].data)[1]
        others = await imagine(world, world.bob, "a wide valley")
        assert image_size(others.grid.attachments[0].data) == (128, 128)  # other users keep 1:1


async def test_remix_on_makes_v1_open_the_remix_modal_and_runs_the_new_prompt(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        server, alice = world.server, world.alice
        panel = await _panel(world)
        assert "Remix: off" in panel.content
        await (await server.click(alice, panel, button(panel, "Remix"))).response()
        await server.wait_until(lambda: "Remix: on" in panel.content, what="remix on")

        grid = (await imagine(world, alice, "a red barn")).grid
        click = await server.click(alice, grid, button(grid, "V1"))
        await click.response()
        modal = click.modal
        assert modal is not None and modal["title"] == "Remix"
        (prompt_input,) = [c for c in walk_components(modal["components"]) if c.get("type") == TEXT_INPUT]
        assert prompt_input.get("value") == "a red barn"
        submitted = await server.submit_modal(alice, click, None, {prompt_input["custom_id"]: "a blue barn"})
        accepted = await answer(submitted)
        assert "queued" in accepted.content
        remix = await server.wait_for_message(
            world.channel, lambda m: has_buttons("U1")(m) and "a blue barn" in m.content, timeout=20
        )
        record = await job_record(bot, _job(remix))
        assert record.kind == "remix" and Envelope.loads(record.request).request.prompt == "a blue barn"


def _job(message: FakeMessage) -> str:
    return next(cid.split(":")[2] for cid in message.custom_ids if cid.startswith("songe:u:"))


async def test_the_default_mode_select_follows_the_plan(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        server, alice = world.server, world.alice
        await bot.store.set_plan(alice.id, "basic", operator_id=world.operator.id)
        panel = await _panel(world)
        refused = await server.click(alice, panel, select(panel, "Default mode"), values=["relax"])
        assert "relax mode is not part of the **basic** plan" in (await answer(refused)).content
        assert (await bot.store.account(alice.id)).mode is Mode.FAST

        await bot.store.set_plan(alice.id, "standard", operator_id=world.operator.id)
        chosen = await server.click(alice, panel, select(panel, "Default mode"), values=["relax"])
        await chosen.response()
        await server.wait_until(lambda: "Mode: relax" in panel.content, what="the panel to show relax")
        ran = await imagine(world, alice, "a slow river")
        assert "in relax mode" in ran.accepted.content
        assert (await job_record(bot, ran.job_id)).mode is Mode.RELAX


async def test_prefer_suffix_adds_the_parameters_a_prompt_does_not_give(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]):
        alice = world.alice
        assert "--ar 3:2 --s 250" in await slash_answer(world, alice, "prefer", "suffix", text="--ar 3:2 --s 250")
        ran = await imagine(world, alice, "a market street")
        width, height = image_size(ran.grid.attachments[0].data)
        assert width > height and "--ar 3:2" in ran.grid.content and "--s 250" in ran.grid.content
        own = await imagine(world, alice, "a market street --ar 2:3")
        assert "--ar 2:3" in own.grid.content and "--s 250" in own.grid.content

        refused = await slash_answer(world, alice, "prefer", "suffix", text="in the style of Monet")
        assert "parameters only" in refused
        await imagine(world, alice, "a market street")  # the earlier suffix still stands, /imagine still works
        assert "Suffix cleared" in await slash_answer(world, alice, "prefer", "suffix")
        plain = await imagine(world, alice, "a market street")
        assert "--ar" not in plain.grid.content


async def test_prefer_options_are_set_listed_expanded_and_deleted(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]):
        alice = world.alice
        text = await slash_answer(world, alice, "prefer", "option", "set", name="cinema", value="--ar 21:9 --c 20")
        assert "`--cinema` now stands for `--ar 21:9 --c 20`" in text
        assert "`--cinema` = `--ar 21:9 --c 20`" in await slash_answer(world, alice, "prefer", "option", "list")
        ran = await imagine(world, alice, "a desert road --cinema")
        assert "--ar 7:3" in ran.grid.content and "--c 20" in ran.grid.content

        for name, value in (("ar", "--ar 1:1"), ("bad name!", "--ar 1:1"), ("words", "a castle")):
            refusal = await slash_answer(world, alice, "prefer", "option", "set", name=name, value=value)
            assert "cannot name an option" in refusal or "parameters only" in refusal, (name, refusal)
        assert "words" not in await slash_answer(world, alice, "prefer", "option", "list")

        assert "deleted" in await slash_answer(world, alice, "prefer", "option", "delete", name="cinema")
        assert "no option shortcuts" in await slash_answer(world, alice, "prefer", "option", "list")
        refusal = await slash_answer(world, alice, "imagine", prompt="a desert road --cinema")
        assert "Unknown parameter `--cinema`" in refusal


async def test_show_reposts_a_result_whose_buttons_work(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        server, alice = world.server, world.alice
        ran = await imagine(world, alice, "an origami crane --ar 3:2")
        itx = await server.slash(alice, world.channel, "show", job=ran.job_id[:8])
        repost = await itx.original(10)
        assert repost.id != ran.grid.id and not repost.ephemeral
        assert repost.attachments[0].data == ran.grid.attachments[0].data
        assert "an origami crane" in repost.content and {"U1", "U2", "V1"} <= set(repost.labels)

        u2 = await server.click(world.bob, repost, button(repost, "U2"))
        single = await u2.original(10)
        width, height = image_size(ran.grid.attachments[0].data)
        assert image_size(single.attachments[0].data) == (width // 2, height // 2)
        assert "image #2" in single.content and "Upscale (Subtle)" in single.labels

        unknown = await slash_answer(world, alice, "show", job="0123abcd")
        assert "I do not know that job" in unknown
        assert (await job_record(bot, ran.job_id)).status is JobStatus.SUCCEEDED


async def test_help_lists_the_commands(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]):
        text = await slash_answer(world, world.alice, "help")
    for command in ("/imagine", "/info", "/settings", "/prefer", "/show", "--ar"):
        assert command in text


# -- server policy --------------------------------------------------------------------------------------------------


async def test_only_members_with_manage_server_change_the_servers_policy(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        for args in (("channel-allow",), ("buttons",), ("nsfw",), ("channels-all",)):
            values = {
                "channel-allow": {"channel": world.channel},
                "buttons": {"author_only": True},
                "nsfw": {"allowed": True},
            }.get(args[0], {})
            refusal = await slash_answer(world, world.alice, "server", *args, **values)
            assert "Only members with Manage Server" in refusal
        policy = await bot.store.guild_policy(world.guild.id)
        assert not policy.allowed_channel_ids and not policy.author_only_buttons and not policy.nsfw_in_age_restricted


async def test_a_server_limits_songe_to_allowed_channels(world: World, tmp_path: Path) -> None:
    studio = world.server.add_channel(world.guild, "studio")
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        text = await slash_answer(world, world.admin, "server", "channel-allow", channel=studio)
        assert f"<#{studio.id}>" in text
        refusal = await slash_answer(world, world.alice, "imagine", prompt="a teapot")
        assert "does not answer in this channel" in refusal
        assert await bot.store.recent_jobs(world.alice.id) == []
        await imagine(world, world.alice, "a teapot", channel=studio)

        await slash_answer(world, world.admin, "server", "channels-all")
        grid_elsewhere = (await imagine(world, world.alice, "a teapot")).grid
        assert grid_elsewhere.channel is world.channel


async def test_author_only_buttons_refuse_other_users(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        server = world.server
        text = await slash_answer(world, world.admin, "server", "buttons", author_only=True)
        assert "Buttons for the author only: on" in text
        ran = await imagine(world, world.alice, "a kite")
        refused = await server.click(world.bob, ran.grid, button(ran.grid, "V2"))
        assert "Only the author of this job" in (await answer(refused)).content
        assert await bot.store.recent_jobs(world.bob.id) == []
        own = await server.click(world.alice, ran.grid, button(ran.grid, "V2"))
        assert "queued" in (await answer(own)).content

        await slash_answer(world, world.admin, "server", "buttons", author_only=False)
        allowed = await server.click(world.bob, ran.grid, button(ran.grid, "V3"))
        assert "queued" in (await answer(allowed)).content
        await result_of(world, (await bot.store.recent_jobs(world.bob.id))[0].job_id[:8])


async def test_nsfw_policy_is_stored_and_shown(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]) as bot:
        text = await slash_answer(world, world.admin, "server", "nsfw", allowed=True)
        assert "NSFW in age-restricted channels: on" in text
        assert (await bot.store.guild_policy(world.guild.id)).nsfw_in_age_restricted
        shown = await slash_answer(world, world.alice, "server", "show")
        assert "Only members with Manage Server" in shown
        shown = await slash_answer(world, world.admin, "server", "show")
        assert "NSFW in age-restricted channels: on" in shown and "every channel" in shown
