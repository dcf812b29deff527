"""The fake Discord server against the real discord.py: a small bot defined here, not Songe's."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import sys
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from tests.support.fake_discord import (
    ADMINISTRATOR,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeUser,
    InteractionResponse,
    redirect,
    subprocess_env,
)

pytestmark = pytest.mark.e2e

OWNER_ID = 111_111_111_111_111_111
SKU_ID = 222_222_222_222_222_222
TEAMMATE_ID = 333_333_333_333_333_333
JOBS = ["abc123", "abd456", "xyz789"]
Seconds = app_commands.Range[int, 1]


def png(width: int = 4, height: int = 3) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="PNG")
    return buffer.getvalue()


# -- the bot under test ---------------------------------------------------------------------------------------


class ResultView(discord.ui.View):
    """Persistent: registered in setup_hook, so clicks work on any message carrying its custom ids."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="U1", custom_id="demo:upscale:1")
    async def upscale(self, interaction: discord.Interaction, button: discord.ui.Button[ResultView]) -> None:
        await interaction.response.edit_message(content=f"upscaled by {interaction.user.name}", view=None)

    @discord.ui.select(
        custom_id="demo:variant", options=[discord.SelectOption(label="V1"), discord.SelectOption(label="V2")]
    )
    async def variant(self, interaction: discord.Interaction, select: discord.ui.Select[ResultView]) -> None:
        await interaction.response.defer()  # a component's silent deferral: type 6
        await interaction.edit_original_response(content=f"variant {select.values[0]}")


class PromptModal(discord.ui.Modal, title="Describe"):
    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(label="Prompt", custom_id="demo:prompt")
    note: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(label="Note", custom_id="demo:note", required=False)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"you said {self.prompt.value!r} {self.note.value!r}", ephemeral=True)


@dataclass
class Probe:
    """What the bot saw, for assertions the Discord side cannot show."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[tuple[int, int]] = field(default_factory=list)
    seen: dict[str, object] = field(default_factory=dict)


def make_bot(probe: Probe, *, sharded: bool = False) -> commands.Bot:
    kind = commands.AutoShardedBot if sharded else commands.Bot
    bot = kind(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)

    async def before_identify_hook(shard_id: int | None, *, initial: bool = False) -> None:
        """No 5 s pause between shards' IDENTIFYs: the fake has no identify rate limit."""

    bot.before_identify_hook = before_identify_hook  # type: ignore[method-assign]

    @bot.tree.command(description="Make a picture")
    async def imagine(interaction: discord.Interaction, prompt: str) -> None:
        await interaction.response.defer()
        await interaction.followup.send(
            f"**{prompt}**", file=discord.File(io.BytesIO(png()), "grid.png"), view=ResultView(), wait=True
        )

    @bot.tree.command(description="Render with progress edits")
    async def render(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content="50%")
        original = await interaction.original_response()
        final = discord.File(io.BytesIO(png(8, 8)), "final.png")
        await interaction.edit_original_response(content=f"done {original.id}", attachments=[final])
        temporary = await interaction.followup.send("temporary", wait=True)
        await temporary.delete()

    @bot.tree.command(description="Vary an uploaded image")
    async def vary(interaction: discord.Interaction, image: discord.Attachment) -> None:
        data = await image.read()
        await interaction.response.send_message(f"{image.filename}: {len(data)} bytes, {image.width}x{image.height}")

    @bot.tree.command(description="Open a modal")
    async def describe(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(PromptModal())

    @bot.tree.command(description="Upscale a job")
    async def upscale(interaction: discord.Interaction, job: str) -> None:
        await interaction.response.send_message(f"upscaling {job}")

    @upscale.autocomplete("job")
    async def upscale_jobs(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=j, value=j) for j in JOBS if j.startswith(current)]

    @bot.tree.command(description="Post in the channel")
    async def post(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.defer(ephemeral=True)
        assert isinstance(interaction.channel, discord.TextChannel)
        await interaction.channel.send(text)
        await interaction.followup.send("posted", ephemeral=True)

    @bot.tree.command(description="Who am I")
    async def whoami(interaction: discord.Interaction) -> None:
        assert isinstance(interaction.channel, discord.TextChannel)
        probe.seen.update(
            locale=str(interaction.locale),
            guild_locale=str(interaction.guild_locale),
            admin=interaction.permissions.administrator,
            owner=await bot.is_owner(interaction.user),
            entitlements=[e.sku_id for e in interaction.entitlements],
            nsfw=interaction.channel.nsfw,
            listed=[e.sku_id async for e in bot.entitlements(user=interaction.user)],
            size_limit=interaction.filesize_limit,
            created=str(interaction.user.created_at.date()),
        )
        await interaction.response.send_message("noted", ephemeral=True)
        await interaction.user.send("a private word")

    @bot.tree.command(description="Defer, then wait for the test before following up")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await probe.gate.wait()
        try:
            await interaction.followup.send("too late?")
        except discord.HTTPException as exc:
            probe.errors.append((exc.status, exc.code))
        probe.done.set()

    admin = app_commands.Group(
        name="admin", description="Operator commands", guild_only=True,
        default_permissions=discord.Permissions(administrator=True),
    )  # fmt: skip

    @admin.command(description="Grant GPU time")
    async def grant(interaction: discord.Interaction, user: discord.Member, seconds: Seconds) -> None:
        is_admin = user.guild_permissions.administrator
        await interaction.response.send_message(f"granted {seconds}s to {user.name} (admin={is_admin})")

    bot.tree.add_command(admin)

    @bot.tree.context_menu(name="Upscale")
    async def upscale_message(interaction: discord.Interaction, message: discord.Message) -> None:
        files = len(message.attachments)
        await interaction.response.send_message(f"upscaling message {message.id} with {files} file(s)")

    async def setup_hook() -> None:
        bot.add_view(ResultView())
        await bot.tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot


# -- fixtures ---------------------------------------------------------------------------------------------------


@dataclass
class Scene:
    server: FakeDiscord
    guild: FakeGuild
    channel: FakeChannel
    alice: FakeUser
    bob: FakeUser
    probe: Probe


@pytest.fixture
async def scene(request: pytest.FixtureRequest) -> AsyncIterator[Scene]:
    """A started fake with one guild (locale de), an NSFW channel, alice and bob (an administrator)."""
    server = FakeDiscord(owner_id=OWNER_ID, heartbeat_interval=1.0, **getattr(request, "param", {}))
    guild = server.add_guild("Test", locale="de")
    channel = server.add_channel(guild, "art", nsfw=True)
    alice = server.add_user("alice", locale="en-US")
    bob = server.add_user("bob", permissions=ADMINISTRATOR, created_at=dt.datetime(2020, 1, 2, tzinfo=dt.UTC))
    undo = redirect.apply(await server.start())
    try:
        yield Scene(server, guild, channel, alice, bob, Probe())
    finally:
        undo()
        await server.stop()
    assert server.unknown_calls == []


@contextlib.asynccontextmanager
async def running_bot(scene: Scene, *, sharded: bool = False) -> AsyncIterator[commands.Bot]:
    """The test bot, connected to the fake and ready; closed afterwards."""
    bot = make_bot(scene.probe, sharded=sharded)
    task = asyncio.create_task(bot.start(scene.server.token))
    ready = asyncio.create_task(scene.server.wait_ready())
    try:
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
            raise AssertionError("the bot stopped before it was ready")
        await ready
        yield bot
    finally:
        ready.cancel()
        await bot.close()
        await task


@pytest.fixture
async def bot(scene: Scene) -> AsyncIterator[commands.Bot]:
    async with running_bot(scene) as bot:
        yield bot


# -- tests ------------------------------------------------------------------------------------------------------

COMMANDS = {"imagine", "render", "vary", "describe", "upscale", "post", "whoami", "slow", "admin", "Upscale"}


async def test_bot_syncs_global_and_guild_commands(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    assert {c["name"] for c in server.commands()} == COMMANDS
    assert all(c["id"] and c["application_id"] == str(server.app_id) for c in server.commands())

    bot.tree.copy_global_to(guild=discord.Object(scene.guild.id))
    await bot.tree.sync(guild=discord.Object(scene.guild.id))
    itx = await server.slash(scene.alice, scene.channel, "upscale", job="abc123")

    assert {c["name"] for c in server.commands(scene.guild)} == COMMANDS
    assert itx.payload["data"]["guild_id"] == str(scene.guild.id)  # the guild's copy wins
    assert (await itx.response()).content == "upscaling abc123"


async def test_slash_defers_then_followup_fills_it_with_a_png_and_components(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    itx = await server.slash(scene.alice, scene.channel, "imagine", prompt="a red fox --ar 3:2")

    answer = await itx.response()
    assert answer.type == InteractionResponse.DEFERRED_CHANNEL_MESSAGE and not answer.ephemeral
    assert answer.elapsed is not None
    msg = await itx.original()
    assert [m.id for m in await itx.followups()] == [msg.id]  # the first followup fills the placeholder
    assert msg.content == "**a red fox --ar 3:2**" and not msg.ephemeral
    assert msg.custom_ids == ["demo:upscale:1", "demo:variant"] and msg.labels == ["U1"]
    [picture] = msg.attachments
    assert (picture.filename, picture.content_type, picture.width, picture.height) == ("grid.png", "image/png", 4, 3)
    async with aiohttp.ClientSession() as http, http.get(picture.url) as got:
        assert await got.read() == png()
    assert server.messages(scene.channel) == [msg]


async def test_clicking_the_persistent_button_edits_the_message(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    msg = await (await server.slash(scene.alice, scene.channel, "imagine", prompt="fox")).original()

    click = await server.click(scene.bob, msg, "demo:upscale:1")

    assert (await click.response()).type == InteractionResponse.UPDATE_MESSAGE
    assert msg.content == "upscaled by bob" and msg.custom_ids == []
    assert [v.content for v in msg.edits] == ["", "**fox**"]  # placeholder, then the followup's content
    with pytest.raises(KeyError):
        await server.click(scene.bob, msg, "demo:upscale:1")


async def test_select_defers_the_update_then_edits_its_message(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    msg = await (await server.slash(scene.alice, scene.channel, "imagine", prompt="fox")).original()

    pick = await server.click(scene.alice, msg, "demo:variant", values=["V2"])

    assert (await pick.response()).type == InteractionResponse.DEFERRED_UPDATE_MESSAGE
    assert await pick.original(where=lambda m: m.content == "variant V2") is msg


async def test_progress_edits_of_the_original_response(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    itx = await server.slash(scene.alice, scene.channel, "render")

    msg = await itx.original(where=lambda m: m.content.startswith("done"))
    [temporary] = await itx.followups()
    await server.wait_until(lambda: temporary.deleted, what="the temporary followup to go")

    assert msg.content == f"done {msg.id}" and [v.content for v in msg.edits] == ["", "50%"]
    assert [(a.filename, a.width) for a in msg.attachments] == [("final.png", 8)]
    assert server.messages(scene.channel) == [msg]


async def test_attachment_option_is_served_from_the_cdn(scene: Scene, bot: commands.Bot) -> None:
    itx = await scene.server.slash(scene.alice, scene.channel, "vary", image=("in.png", png(5, 2)))
    assert (await itx.response()).content == f"in.png: {len(png(5, 2))} bytes, 5x2"


async def test_modal_round_trip(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    itx = await server.slash(scene.alice, scene.channel, "describe")
    assert (await itx.response()).type == InteractionResponse.MODAL

    submitted = await server.submit_modal(scene.alice, itx, None, {"demo:prompt": "a cat"})

    answer = await submitted.response()
    assert answer.ephemeral and answer.content == "you said 'a cat' ''"
    assert (await submitted.original()).ephemeral
    assert server.messages(scene.channel) == []
    with pytest.raises(KeyError):
        await server.submit_modal(scene.alice, itx, None, {"demo:nope": "x"})


async def test_autocomplete_offers_the_bots_choices(scene: Scene, bot: commands.Bot) -> None:
    choices = await scene.server.autocomplete(scene.alice, scene.channel, "upscale", focused="job", value="ab")
    assert [c["value"] for c in choices] == ["abc123", "abd456"]


async def test_subcommand_with_a_member_option(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    itx = await server.slash(scene.bob, scene.channel, "admin", "grant", user=scene.bob, seconds=60)
    assert (await itx.response()).content == "granted 60s to bob (admin=True)"
    with pytest.raises(ValueError):  # below the synced minimum: Discord's client refuses it
        await server.slash(scene.bob, scene.channel, "admin", "grant", user=scene.alice, seconds=0)
    with pytest.raises(PermissionError):  # default permissions: administrators only
        await server.slash(scene.alice, scene.channel, "admin", "grant", user=scene.alice, seconds=1)
    with pytest.raises(PermissionError):  # guild only
        await server.slash(scene.bob, None, "admin", "grant", user=scene.alice, seconds=1)


async def test_message_context_menu(scene: Scene, bot: commands.Bot) -> None:
    msg = await (await scene.server.slash(scene.alice, scene.channel, "imagine", prompt="fox")).original()
    itx = await scene.server.context_menu(scene.alice, msg, "Upscale")
    assert (await itx.response()).content == f"upscaling message {msg.id} with 1 file(s)"


async def test_interaction_payload_carries_locale_permissions_owner_and_entitlements(
    scene: Scene, bot: commands.Bot
) -> None:
    server, probe = scene.server, scene.probe

    async def whoami(user: FakeUser, locale: str | None = None) -> dict[str, object]:
        probe.seen.clear()
        await (await server.slash(user, scene.channel, "whoami", locale=locale)).response()
        return dict(probe.seen)

    plan = server.add_entitlement(scene.bob, sku_id=SKU_ID)
    assert await whoami(scene.bob, "fr") == {
        "locale": "fr", "guild_locale": "de", "admin": True, "owner": False, "entitlements": [SKU_ID],
        "nsfw": True, "listed": [SKU_ID], "size_limit": 10 * 1024 * 1024, "created": "2020-01-02",
    }  # fmt: skip
    server.end_entitlement(plan)
    assert (await whoami(scene.bob))["entitlements"] == []
    owner = await whoami(server.owner)
    assert (owner["owner"], owner["admin"], owner["locale"]) == (True, True, "en-US")
    await server.wait_until(lambda: len(server.dm_messages(scene.bob)) == 2, what="two DMs to bob")
    assert [m.content for m in server.dm_messages(scene.bob)] == ["a private word"] * 2


@pytest.mark.parametrize("scene", [{"team_member_ids": [TEAMMATE_ID]}], indirect=True)
async def test_team_owned_application_lists_every_member(scene: Scene, bot: commands.Bot) -> None:
    info = await bot.application_info()
    assert info.team is not None and {m.id for m in info.team.members} == {OWNER_ID, TEAMMATE_ID}
    assert await bot.is_owner(discord.Object(TEAMMATE_ID))  # type: ignore[arg-type]


async def test_rate_limited_message_is_retried_and_posted_once(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    server.fail_next("POST", r"/channels/\d+/messages", status=429, retry_after=0.1)

    itx = await server.slash(scene.alice, scene.channel, "post", text="hello")
    await itx.followups()

    assert [m.content for m in server.messages(scene.channel)] == ["hello"]
    posts = server.requests("POST", rf"/channels/{scene.channel.id}/messages")
    assert [(c.status, c.fault) for c in posts] == [(429, True), (200, False)]
    [note] = await itx.followups()
    assert note.ephemeral and note.content == "posted"  # the deferral was ephemeral, so the followup is too


async def test_injected_errors_reach_the_bot_and_server_errors_are_retried(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    server.fail_next("POST", r"/channels/\d+/messages", status=403, code=50013, message="Missing Permissions")
    server.fail_next("POST", r"/interactions/\d+/[\w-]+/callback", status=500)
    channel = bot.get_channel(scene.channel.id)
    assert isinstance(channel, discord.TextChannel)

    with pytest.raises(discord.Forbidden) as refused:
        await channel.send("hello")
    itx = await server.slash(scene.alice, scene.channel, "upscale", job="abc123")

    assert (await itx.response()).content == "upscaling abc123"
    assert refused.value.code == 50013
    callbacks = server.requests("POST", r"/interactions/.*")
    assert [(c.status, c.fault) for c in callbacks] == [(500, True), (200, False)]


async def test_slash_in_a_dm(scene: Scene, bot: commands.Bot) -> None:
    itx = await scene.server.slash(scene.alice, None, "upscale", job="abd456")
    assert (await itx.response()).content == "upscaling abd456"
    assert itx.payload["context"] == 1 and "member" not in itx.payload


@pytest.mark.parametrize("scene", [{"callback_deadline": 0.0}], indirect=True)
async def test_late_callback_is_an_unknown_interaction(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    itx = await server.slash(scene.alice, scene.channel, "upscale", job="abc123")

    [call] = await server.wait_until(lambda: [c for c in server.requests("POST", r"/interactions/.*") if c.status])
    assert call.status == 404 and itx.answered is None


async def test_bot_messages_dedupe_by_nonce_and_can_be_edited_and_deleted(scene: Scene, bot: commands.Bot) -> None:
    channel = bot.get_channel(scene.channel.id)
    assert isinstance(channel, discord.TextChannel)
    first = await channel.send("once", nonce=42)
    again = await channel.send("once", nonce=42)
    [msg] = scene.server.messages(scene.channel)
    assert first.id == again.id == msg.id

    await first.edit(content="twice")
    assert msg.content == "twice" and [v.content for v in msg.edits] == ["once"]
    await first.delete()
    assert msg.deleted and scene.server.messages(scene.channel) == []


async def test_history_after_a_message_needs_read_message_history(scene: Scene, bot: commands.Bot) -> None:
    channel = bot.get_channel(scene.channel.id)
    assert isinstance(channel, discord.TextChannel)
    sent = [await channel.send(f"m{n}") for n in range(4)]
    after = [m.content async for m in channel.history(after=sent[0], limit=2, oldest_first=True)]
    assert after == ["m1", "m2"]
    scene.channel.bot_permissions = discord.Permissions(view_channel=True, send_messages=True).value
    assert [m async for m in channel.history(limit=10)] == []  # Discord shows nothing without the permission


async def test_deleted_message_and_channel_are_unknown_to_the_bot(scene: Scene, bot: commands.Bot) -> None:
    channel = bot.get_channel(scene.channel.id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("soon gone")
    scene.server.delete_message(scene.server.messages(scene.channel)[0])
    with pytest.raises(discord.NotFound) as gone:
        await sent.edit(content="edited")
    scene.server.delete_channel(scene.channel)
    with pytest.raises(discord.NotFound) as missing:
        await channel.send("anyone?")
    assert (gone.value.code, missing.value.code) == (10008, 10003)


@pytest.mark.parametrize("code", [4000, None], ids=["close-4000", "abort-1006"])
async def test_dropped_gateway_resumes_and_replays_missed_events(
    scene: Scene, bot: commands.Bot, code: int | None
) -> None:
    server = scene.server
    await server.drop_gateway(code=code)
    itx = await server.slash(scene.alice, scene.channel, "upscale", job="abc123")  # sent while disconnected

    assert (await itx.response(timeout=10)).content == "upscaling abc123"
    assert (server.identify_count, server.resume_count) == (1, 1)


@pytest.mark.parametrize("scene", [{"shards": 2}], indirect=True)
async def test_auto_sharded_bot_gets_each_guild_on_its_shard(scene: Scene) -> None:
    server = scene.server
    home = (scene.guild.id >> 22) % 2
    second = server.add_guild("Second", id=((scene.guild.id >> 22) + 1) << 22 | 0x3FFFFF)
    channel = server.add_channel(second, "art")
    server.add_member(second, scene.alice)

    async with running_bot(scene, sharded=True) as bot:
        for where, job in ((scene.channel, "abc123"), (channel, "xyz789")):
            itx = await server.slash(scene.alice, where, "upscale", job=job)
            assert (await itx.response()).content == f"upscaling {job}"
        shards = [g.shard_id for g in (bot.get_guild(scene.guild.id), bot.get_guild(second.id)) if g]
    assert shards == [home, 1 - home]
    assert sorted(s.shard for s in server.gateway.sessions.values()) == [(0, 2), (1, 2)]


async def test_expired_token_refuses_followups_but_channel_edits_still_work(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    result = await (await server.slash(scene.alice, scene.channel, "imagine", prompt="fox")).original()
    itx = await server.slash(scene.alice, scene.channel, "slow")
    await itx.response()

    itx.expire()
    scene.probe.gate.set()
    await asyncio.wait_for(scene.probe.done.wait(), 5)
    channel = bot.get_channel(scene.channel.id)
    assert isinstance(channel, discord.TextChannel)
    await (await channel.fetch_message(result.id)).edit(content="edited after the token expired")

    assert scene.probe.errors == [(401, 50027)]
    assert result.content == "edited after the token expired"


async def test_wrong_token_fails_login(scene: Scene) -> None:
    client = discord.Client(intents=discord.Intents.none())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-" + scene.server.token)
    await client.close()


class ZlibStream:
    """discord.py's decompression-context protocol for zlib-stream (it ships only one, chosen at import)."""

    COMPRESSION_TYPE = "zlib-stream"

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj()
        self._buffer = bytearray()

    def decompress(self, data: bytes, /) -> str | None:
        self._buffer += data
        if not data.endswith(b"\x00\x00\xff\xff"):
            return None
        text = self._inflate.decompress(self._buffer).decode()
        self._buffer.clear()
        return text


@pytest.mark.parametrize("mode", ["zstd-stream", "zlib-stream"])
async def test_discord_py_gateway_compression(scene: Scene, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    if mode == "zlib-stream":
        monkeypatch.setattr(discord.utils, "_ActiveDecompressionContext", ZlibStream)
    elif mode != discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE:
        pytest.skip("discord.py picks zstd-stream only when zstandard is installed")
    async with running_bot(scene):
        itx = await scene.server.slash(scene.alice, scene.channel, "upscale", job="xyz789")
        assert (await itx.response()).content == "upscaling xyz789"
    assert scene.server.gateway.compressions == [mode]


@pytest.mark.parametrize("mode", [None, "zlib-stream", "zstd-stream"])
async def test_raw_gateway_speaks_each_compression(scene: Scene, mode: str | None) -> None:
    query = {"v": "10", "encoding": "json"} | ({"compress": mode} if mode else {})
    if mode == "zstd-stream":
        zstandard = pytest.importorskip("zstandard")
        inflate = zstandard.ZstdDecompressor().decompressobj()
        decode = lambda frame: inflate.decompress(frame).decode()  # noqa: E731
    elif mode == "zlib-stream":
        decode = ZlibStream().decompress
    async with aiohttp.ClientSession() as http, http.ws_connect(scene.server.gateway.url, params=query) as ws:

        async def receive() -> dict[str, object]:
            msg = await ws.receive(timeout=5)
            return json.loads(msg.data if mode is None else decode(msg.data))

        assert (await receive())["op"] == 10
        await ws.send_json({"op": 2, "d": {"token": scene.server.token, "intents": 1, "properties": {}}})
        ready, guild = await receive(), await receive()
    assert (ready["t"], ready["s"], guild["t"], guild["s"]) == ("READY", 1, "GUILD_CREATE", 2)


async def test_unknown_routes_answer_404_json_and_are_recorded(scene: Scene, bot: commands.Bot) -> None:
    with pytest.raises(discord.NotFound) as caught:
        await bot.http.request(discord.http.Route("GET", "/guilds/{guild_id}/bans", guild_id=scene.guild.id))
    assert "no route" in caught.value.text
    assert [c.path for c in scene.server.unknown_calls] == [f"/guilds/{scene.guild.id}/bans"]
    scene.server.unknown_calls.clear()


SUBPROCESS_BOT = """
import os, discord

client = discord.Client(intents=discord.Intents.none())

@client.event
async def on_connect():
    channel = await client.fetch_channel(int(os.environ["CHANNEL_ID"]))
    await channel.send("hello from " + discord.http.Route.BASE)
    await client.close()

client.run(os.environ["TOKEN"], log_handler=None)
"""


async def test_subprocess_bot_is_redirected_by_the_boot_folder(scene: Scene) -> None:
    env = subprocess_env(scene.server.base_url) | {"TOKEN": scene.server.token, "CHANNEL_ID": str(scene.channel.id)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SUBPROCESS_BOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        msg = await scene.server.wait_for_message(scene.channel, timeout=30)
    finally:
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert msg.content == f"hello from {scene.server.base_url}/api/v10", stderr.decode()
    assert proc.returncode == 0, stderr.decode()
