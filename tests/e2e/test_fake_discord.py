"""The fake Discord server against the real discord.py: a small bot defined here, not Songe's."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
import textwrap
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
    BOOT_DIR,
    URL_ENV,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeUser,
    InteractionResponse,
    redirect,
)

pytestmark = pytest.mark.e2e

OWNER_ID = 111_111_111_111_111_111
SKU_ID = 222_222_222_222_222_222
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


class PromptModal(discord.ui.Modal, title="Describe"):
    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(label="Prompt", custom_id="demo:prompt")
    note: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(label="Note", custom_id="demo:note", required=False)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"you said {self.prompt.value!r} {self.note.value!r}", ephemeral=True)


@dataclass
class Probe:
    """What the bot saw, for assertions the Discord side cannot show."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[tuple[int, int]] = field(default_factory=list)
    seen: dict[str, object] = field(default_factory=dict)


def make_bot(probe: Probe) -> commands.Bot:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)

    @bot.tree.command(description="Make a picture")
    async def imagine(interaction: discord.Interaction, prompt: str) -> None:
        await interaction.response.defer()
        await interaction.followup.send(
            f"**{prompt}**", file=discord.File(io.BytesIO(png()), "grid.png"), view=ResultView(), wait=True
        )

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

    admin = app_commands.Group(name="admin", description="Operator commands")

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
async def scene() -> AsyncIterator[Scene]:
    server = FakeDiscord(owner_id=OWNER_ID, heartbeat_interval=1.0)
    guild = server.add_guild("Test", locale="de")
    channel = server.add_channel(guild, "art", nsfw=True)
    alice = server.add_user("alice", locale="en-US")
    bob = server.add_user("bob", permissions=ADMINISTRATOR)
    undo = redirect.apply(await server.start())
    try:
        yield Scene(server, guild, channel, alice, bob, Probe())
    finally:
        undo()
        await server.stop()
    assert server.unknown_calls == []


@contextlib.asynccontextmanager
async def running_bot(scene: Scene) -> AsyncIterator[commands.Bot]:
    """The test bot, connected to the fake and ready; closed afterwards."""
    bot = make_bot(scene.probe)
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


async def test_bot_syncs_its_commands(scene: Scene, bot: commands.Bot) -> None:
    names = {c["name"] for c in scene.server.commands()}
    assert names == {"imagine", "describe", "upscale", "post", "whoami", "slow", "admin", "Upscale"}
    assert all(c["id"] and c["application_id"] == str(scene.server.app_id) for c in scene.server.commands())


async def test_slash_defers_then_followup_fills_it_with_a_png_and_a_button(scene: Scene, bot: commands.Bot) -> None:
    server = scene.server
    itx = await server.slash(scene.alice, scene.channel, "imagine", prompt="a red fox --ar 3:2")

    answer = await itx.response()
    assert answer.type == InteractionResponse.DEFERRED_CHANNEL_MESSAGE and not answer.ephemeral
    assert answer.elapsed is not None
    msg = await itx.original()
    assert [m.id for m in await itx.followups()] == [msg.id]  # the first followup fills the placeholder
    assert msg.content == "**a red fox --ar 3:2**" and not msg.ephemeral
    assert msg.custom_ids == ["demo:upscale:1"] and msg.labels == ["U1"]
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
    itx = await scene.server.slash(scene.alice, scene.channel, "admin", "grant", user=scene.bob, seconds=60)
    assert (await itx.response()).content == "granted 60s to bob (admin=True)"
    with pytest.raises(ValueError):
        await scene.server.slash(scene.alice, scene.channel, "admin", "grant", user=scene.bob, seconds=0)


async def test_message_context_menu(scene: Scene, bot: commands.Bot) -> None:
    msg = await (await scene.server.slash(scene.alice, scene.channel, "imagine", prompt="fox")).original()
    itx = await scene.server.context_menu(scene.alice, msg, "Upscale")
    assert (await itx.response()).content == f"upscaling message {msg.id} with 1 file(s)"


async def test_interaction_payload_carries_locale_permissions_owner_and_entitlements(
    scene: Scene, bot: commands.Bot
) -> None:
    server, probe = scene.server, scene.probe
    server.add_entitlement(scene.bob, sku_id=SKU_ID)
    for user, locale in ((scene.bob, "fr"), (server.owner, None)):
        probe.seen.clear()
        await (await server.slash(user, scene.channel, "whoami", locale=locale)).response()
        await server.wait_for_message(server.dm_channel(user))
        if user is scene.bob:
            assert probe.seen == {
                "locale": "fr",
                "guild_locale": "de",
                "admin": True,
                "owner": False,
                "entitlements": [SKU_ID],
                "nsfw": True,
                "listed": [SKU_ID],
                "size_limit": 10 * 1024 * 1024,
            }
        else:
            assert probe.seen["owner"] is True and probe.seen["entitlements"] == []
    assert [m.content for m in server.dm_messages(scene.bob)] == ["a private word"]


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


async def test_enforced_nonce_posts_once(scene: Scene, bot: commands.Bot) -> None:
    channel = bot.get_channel(scene.channel.id)
    assert isinstance(channel, discord.TextChannel)
    first = await channel.send("once", nonce=42)
    again = await channel.send("once", nonce=42)
    assert first.id == again.id and len(scene.server.messages(scene.channel)) == 1


@pytest.mark.parametrize("code", [4000, None], ids=["close-4000", "abort-1006"])
async def test_dropped_gateway_resumes_and_replays_missed_events(
    scene: Scene, bot: commands.Bot, code: int | None
) -> None:
    server = scene.server
    await server.drop_gateway(code=code)
    itx = await server.slash(scene.alice, scene.channel, "upscale", job="abc123")  # sent while disconnected

    assert (await itx.response(timeout=10)).content == "upscaling abc123"
    assert (server.identify_count, server.resume_count) == (1, 1)


async def test_expired_token_refuses_followups(scene: Scene, bot: commands.Bot) -> None:
    itx = await scene.server.slash(scene.alice, scene.channel, "slow")
    await itx.response()

    itx.expire()
    scene.probe.gate.set()

    await scene.server.wait_until(lambda: scene.probe.errors)
    assert scene.probe.errors == [(401, 50027)]


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
            text = msg.data if mode is None else decode(msg.data)
            return json.loads(text)

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


SUBPROCESS_BOT = textwrap.dedent(
    """
    import os, discord

    client = discord.Client(intents=discord.Intents.none())

    @client.event
    async def on_connect():
        channel = await client.fetch_channel(int(os.environ["CHANNEL_ID"]))
        await channel.send("hello from " + discord.http.Route.BASE)
        await client.close()

    client.run(os.environ["TOKEN"], log_handler=None)
    """
)


async def test_subprocess_bot_is_redirected_by_the_boot_folder(scene: Scene, tmp_path: object) -> None:
    env = {
        **os.environ,
        URL_ENV: scene.server.base_url,
        "PYTHONPATH": str(BOOT_DIR),
        "TOKEN": scene.server.token,
        "CHANNEL_ID": str(scene.channel.id),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SUBPROCESS_BOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        msg = await scene.server.wait_for_message(scene.channel, timeout=30)
    finally:
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert msg.content == f"hello from {scene.server.base_url}/api/v10", stderr.decode()
    assert proc.returncode == 0, stderr.decode()
