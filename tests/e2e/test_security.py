"""Issue 6, security: the token stays secret, operators' powers stay with operators, buttons obey their checks,
files are private, and the invite link asks for nothing more than the bot needs."""

from __future__ import annotations

import io
import re
import stat
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest
from PIL import Image

from bot.app import SongeBot
from pipelines.fake import FakeEngine
from tests.e2e.audit import audit, bot_messages, settled
from tests.e2e.conftest import REPO, World, fake_queue, has_buttons, songe_inprocess
from tests.e2e.gate import Gate
from tests.e2e.processes import BotLauncher
from tests.support.fake_discord import FakeMessage, FakeUser

pytestmark = pytest.mark.e2e

NOT_OPERATOR = "Only the bot's operators can use this command"
AUTHOR_ONLY = "Only the author of this job can do that here."
USER, STRING, INTEGER, NUMBER = 6, 3, 4, 10


@pytest.fixture
async def songe(world: World, tmp_path: Path) -> AsyncIterator[SongeBot]:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(FakeEngine())) as bot:
        yield bot


# -- the token ---------------------------------------------------------------------------------------------------


async def test_the_token_appears_in_no_log_and_no_message(world: World, launcher: BotLauncher, tmp_path: Path) -> None:
    server, channel = world.server, world.channel
    run = await launcher.start(tmp_path / "data", SONGE_LOG_LEVEL="DEBUG", SONGE_TEST_FAIL_PROMPTS="a doomed owl")
    await server.slash(world.alice, channel, "imagine", prompt="a fox in the snow")
    await server.slash(world.bob, channel, "imagine", prompt="a doomed owl")
    bad = await server.slash(world.bob, channel, "imagine", prompt="a cat --ar 9:1")
    await server.wait_for_message(channel, has_buttons("U1"), timeout=30)
    await server.wait_for_message(channel, lambda m: "refunded" in m.content, timeout=30)
    assert "--ar" in (await bad.original(timeout=10)).content
    server.fail_next("POST", r"/channels/\d+/messages", status=503)  # an unexpected error, logged with traceback
    broken = await server.slash(world.frenchie, channel, "imagine", prompt="un chat")
    assert "référence" in (await broken.original(timeout=10)).content
    await settled(tmp_path / "data" / "songe.sqlite3")
    assert await run.terminate() == 0
    logs = launcher.logs()
    assert "DEBUG" in logs and "Traceback" in logs  # the run logged verbosely, the unexpected error in full
    assert server.token not in logs
    shown = [m.content for m in server.world.messages.values()] + [
        str(c.json) for c in server.calls if c.json is not None
    ]
    assert not [text for text in shown if server.token in text]
    assert not [m.content for m in bot_messages(server) if "Traceback" in m.content]


# -- operators ---------------------------------------------------------------------------------------------------


def admin_subcommands(world: World) -> list[dict[str, Any]]:
    (group,) = [c for c in world.server.commands(world.guild) if c["name"] == "admin"]
    return list(group["options"])


def sample_values(world: World, subcommand: dict[str, Any]) -> dict[str, Any]:
    """Valid values for the subcommand's required options (an operator's run of it succeeds)."""
    values: dict[str, Any] = {}
    for option in subcommand.get("options", []):
        if not option.get("required"):
            continue
        name, kind = option["name"], option["type"]
        if option.get("choices"):
            values[name] = option["choices"][0]["value"]
        elif kind == USER:
            values[name] = world.alice
        elif kind in (INTEGER, NUMBER):
            values[name] = 1
        else:
            values[name] = "pro" if name == "plan" else "1"
    return values


async def state(bot: SongeBot, world: World) -> tuple[object, ...]:
    """What an /admin command could change."""
    account = await bot.store.account(world.alice.id)
    return account, await bot.store.plans(), await bot.store.audit(), (bot.settings.data_dir / "backups").exists()


async def test_every_admin_subcommand_is_refused_to_non_operators_and_works_for_operators(
    world: World, songe: SongeBot
) -> None:
    server, channel = world.server, world.channel
    subcommands = admin_subcommands(world)
    assert len(subcommands) >= 12
    before = await state(songe, world)
    for user in (world.admin, world.alice):  # a server administrator is not an operator
        for sub in subcommands:
            itx = await server.slash(user, channel, "admin", sub["name"], options=sample_values(world, sub))
            answer = await itx.original(timeout=10)
            assert answer.ephemeral and NOT_OPERATOR in answer.content, (user.name, sub["name"], answer.content)
    assert await state(songe, world) == before
    job = await server.slash(world.alice, channel, "imagine", prompt="still running")  # the queue was not paused
    await server.wait_for_message(channel, has_buttons("U1"), timeout=30)
    assert "✅" in (await job.original(timeout=10)).content

    for sub in subcommands:
        itx = await server.slash(world.operator, channel, "admin", sub["name"], options=sample_values(world, sub))
        answer = await itx.original(timeout=10)
        assert NOT_OPERATOR not in answer.content and "Something went wrong" not in answer.content, (
            sub["name"],
            answer.content,
        )
    assert await state(songe, world) != before


# -- buttons -----------------------------------------------------------------------------------------------------


def forge(message: FakeMessage, custom_id: str) -> None:
    """Make the message carry one button with any custom id, as a modified client could send it."""
    message.components = [{"type": 1, "components": [{"type": 2, "style": 2, "label": "x", "custom_id": custom_id}]}]


async def refusal(world: World, user: FakeUser, message: FakeMessage, custom_id: str) -> str:
    itx = await world.server.click(user, message, custom_id)
    answer = await itx.original(timeout=10)
    assert answer.ephemeral, custom_id
    return answer.content


async def charged_nothing(bot: SongeBot, user: FakeUser) -> bool:
    entries = await bot.store.ledger(user.id, limit=100)
    return all(entry.kind == "grant" for entry in entries) and not await bot.store.recent_jobs(user.id)


async def test_author_only_buttons_and_forged_ids_are_refused_and_charge_nothing(world: World, songe: SongeBot) -> None:
    server, channel = world.server, world.channel
    await songe.store.update_guild_policy(world.guild.id, author_only_buttons=True)
    await server.slash(world.alice, channel, "imagine", prompt="a lighthouse")
    grid = await server.wait_for_message(channel, has_buttons("U1", "V1"), timeout=30)
    job_id = grid.custom_ids[0].split(":")[2]
    u1 = await server.click(world.alice, grid, f"songe:u:{job_id}:1")
    single = await u1.original(timeout=10)

    for message in (grid, single):
        for custom_id in message.custom_ids:
            assert AUTHOR_ONLY in await refusal(world, world.bob, message, custom_id), custom_id
    forged = {
        f"songe:u:{'0' * 32}:1": "I do not know that job",
        f"songe:v:{'f' * 32}:2": "I do not know that job",
        "songe:u:xyz:9": "This button is not recognised",
        f"songe:u:{job_id}:9": "This button is not recognised",
        f"songe:u:{job_id}:0": "That image does not exist in this job",
        f"songe:nuke:{job_id}:1": "This button is not recognised",
        f"songe-appeal:allow:{world.bob.id}:{channel.id}": NOT_OPERATOR,
    }
    for custom_id, expected in forged.items():
        forge(grid, custom_id)
        assert expected in await refusal(world, world.alice, grid, custom_id), custom_id
    assert await charged_nothing(songe, world.bob)
    assert [m for m in server.messages(channel) if m.attachments] == [grid, single]  # nothing else ran
    assert not single.deleted and not grid.deleted


async def test_a_cancel_by_someone_else_is_refused_and_the_job_goes_on(world: World, tmp_path: Path) -> None:
    gate = Gate()
    engine = FakeEngine(before_step=gate)
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        server, channel = world.server, world.channel
        await server.slash(world.alice, channel, "imagine", prompt="a lighthouse")
        progress = await server.wait_for_message(
            channel, lambda m: any(c.startswith("songe:cancel:") for c in m.custom_ids), timeout=10
        )
        (cancel,) = progress.custom_ids
        for intruder in (world.bob, world.admin):
            assert AUTHOR_ONLY in await refusal(world, intruder, progress, cancel)
        gate.opened.set()
        await server.wait_for_message(channel, has_buttons("U1"), timeout=30)
        await settled(bot.settings.database_path)
        assert await charged_nothing(bot, world.bob) and await charged_nothing(bot, world.admin)
        found = await audit(server, bot.settings.database_path)
    assert not found.failures and (found.jobs, found.delivered) == (1, 1)


# -- untrusted input ---------------------------------------------------------------------------------------------


def png(width: int = 32, height: int = 24) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def png_bomb(side: int) -> bytes:
    """A valid one-bit PNG of side x side pixels, all black: about 1 KB per thousand rows, huge once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\0" * (1 + (side + 7) // 8)
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("filename", "make", "expected"),
    [
        pytest.param("notes.txt", lambda: b"just some words, not pixels", "not an image", id="not-an-image"),
        pytest.param("cut.png", lambda: png()[:60], "not an image", id="corrupt"),
        pytest.param("bomb.png", lambda: png_bomb(10_000), "too many pixels", id="decompression-bomb"),
        pytest.param("huge.png", lambda: png() + b"\0" * (21 * 1024 * 1024), "too large", id="too-large"),
    ],
)
async def test_a_bad_attachment_is_refused_clearly_and_charges_nothing(
    world: World, songe: SongeBot, filename: str, make: Any, expected: str
) -> None:
    server, channel = world.server, world.channel
    server.world.attachment_size_limit = 64 * 1024 * 1024  # Discord lets boosted servers upload that much
    itx = await server.slash(world.alice, channel, "imagine", prompt="a fox", image=(filename, make()))
    answer = await itx.original(timeout=20)
    assert answer.ephemeral and expected in answer.content
    assert await charged_nothing(songe, world.alice)
    assert not [m for m in server.messages(channel) if m.attachments or "a fox" in m.content]

    good = await server.slash(world.alice, channel, "imagine", prompt="a fox", image=("fine.png", png()))
    assert "✅" in (await good.original(timeout=10)).content  # the same command with a real image runs
    await server.wait_for_message(channel, has_buttons("U1"), timeout=30)


async def test_a_prompt_longer_than_the_text_encoder_reads_is_cut_with_a_notice(
    world: World, tmp_path: Path, tiny_model_dir: Path
) -> None:
    words = " ".join(f"fox{n % 10}" for n in range(120))  # far past CLIP's 77 tokens, well under 1500 characters
    async with songe_inprocess(world, tmp_path / "data", SONGE_MODEL=str(tiny_model_dir)):
        server, channel = world.server, world.channel
        await server.slash(world.alice, channel, "imagine", prompt=f"{words} --seed 3")
        long_grid = await server.wait_for_message(channel, has_buttons("U1"), timeout=120)
        await server.slash(world.alice, channel, "imagine", prompt="a short fox --seed 3")
        short_grid = await server.wait_for_message(
            channel, lambda m: has_buttons("U1")(m) and "short" in m.content, timeout=120
        )
    assert "was cut" in long_grid.content
    assert "was cut" not in short_grid.content


# -- files -------------------------------------------------------------------------------------------------------


async def test_the_data_directory_is_private_after_a_run(world: World, songe: SongeBot) -> None:
    server, channel = world.server, world.channel
    await server.slash(world.alice, channel, "imagine", prompt="a lighthouse")
    await server.wait_for_message(channel, has_buttons("U1"), timeout=30)
    backup = await server.slash(world.operator, channel, "admin", "backup")
    assert "copied" in (await backup.original(timeout=10)).content
    await settled(songe.settings.database_path)

    data_dir = songe.settings.data_dir
    paths = [data_dir, *data_dir.rglob("*")]
    files = [p for p in paths if p.is_file()]
    assert any(p.suffix == ".png" for p in files) and any(p.parent.name == "backups" for p in files)
    assert songe.settings.database_path in files
    modes = {p.relative_to(data_dir.parent): stat.S_IMODE(p.stat().st_mode) for p in paths}
    assert {p: m for p, m in modes.items() if m != (0o600 if (data_dir.parent / p).is_file() else 0o700)} == {}


# -- the invite link ---------------------------------------------------------------------------------------------


def test_the_readme_invite_link_asks_only_to_view_send_attach_and_read_history() -> None:
    readme = (REPO / "README.md").read_text()
    numbers = set(re.findall(r"permissions=(\d+)", readme)) | set(re.findall(r"permissions integer `(\d+)`", readme))
    assert numbers, "the README gives an invite link with a permissions number"
    wanted = discord.Permissions(view_channel=True, send_messages=True, attach_files=True, read_message_history=True)
    for number in numbers:
        granted = discord.Permissions(int(number))
        assert granted == wanted, f"{number} grants {sorted(name for name, value in granted if value)}"
