"""End-to-end fixtures: the fake Discord server, a small world of users, and Songe itself.

`songe_process` runs the unmodified bot as `python -m bot` (redirected by the fake's sitecustomize);
`songe_inprocess` builds the same `SongeBot` in this process, optionally on a fake engine, for
tests that need many interactions quickly or must look inside the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from bot.app import SongeBot
from bot.config import Settings
from pipelines.fake import FakeEngine
from pipelines.worker import LocalQueue
from tests.support.fake_discord import (
    ADMINISTRATOR,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeUser,
    redirect,
)

if TYPE_CHECKING:
    from tests.e2e.processes import BotLauncher

OWNER_ID = 100_000_000_000_000_001
REPO = Path(__file__).resolve().parents[2]


@dataclass
class World:
    server: FakeDiscord
    guild: FakeGuild
    channel: FakeChannel
    alice: FakeUser
    bob: FakeUser
    admin: FakeUser
    operator: FakeUser
    frenchie: FakeUser


@pytest.fixture
async def world() -> AsyncIterator[World]:
    server = FakeDiscord(owner_id=OWNER_ID)
    guild = server.add_guild("Songe test")
    channel = server.add_channel(guild, "art")
    alice = server.add_user("alice")
    bob = server.add_user("bob")
    admin = server.add_user("admin", permissions=ADMINISTRATOR)
    operator = server.add_user("operator")
    frenchie = server.add_user("amelie", locale="fr")
    await server.start()
    try:
        yield World(server, guild, channel, alice, bob, admin, operator, frenchie)
    finally:
        await server.stop()


def songe_env(world: World, data_dir: Path, **overrides: str) -> dict[str, str]:
    """The settings of a test bot: the fake's token, our guild, tiny sizes."""
    env = {
        "DISCORD_TOKEN": world.server.token,
        "SONGE_DATA_DIR": str(data_dir),
        "SONGE_GUILD_ID": str(world.guild.id),
        "SONGE_OPERATOR_IDS": str(world.operator.id),
        "SONGE_DEVICE": "cpu",
        "SONGE_RESOLUTION": "64",
        "SONGE_STEPS": "2",
        "SONGE_LOG_LEVEL": "INFO",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.update(overrides)
    return env


@dataclass
class BotProcess:
    """`python -m bot` as a child process; its log is kept for assertions."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    async def terminate(self, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.process.wait, timeout)


@pytest.fixture
async def launcher(world: World, tmp_path: Path) -> AsyncIterator[BotLauncher]:
    """Bot processes (`python -m` the production bot on a fake engine) against the fake, killed at teardown."""
    from tests.e2e.processes import BotLauncher  # it imports this module

    bots = BotLauncher(world, tmp_path)
    try:
        yield bots
    finally:
        bots.close()


@pytest.fixture
async def start_bot(world: World, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[BotProcess]]]:
    """Start the production `python -m bot` (real model loading) against the fake; returns an async function
    (data directory, env overrides) -> BotProcess, once its gateway session is ready."""
    from tests.e2e.processes import BotLauncher  # it imports this module

    bots = BotLauncher(world, tmp_path, module="bot")

    async def start(data_dir: Path | None = None, **overrides: str) -> BotProcess:
        return await bots.start(data_dir or tmp_path / "data", timeout=120, **overrides)

    try:
        yield start
    finally:
        bots.close()


QueueFactory = Callable[[Settings], Awaitable[Any]]


def fake_queue(engine: FakeEngine, **kwargs: Any) -> QueueFactory:
    async def factory(settings: Settings) -> LocalQueue:
        return LocalQueue(engine, max_batch=settings.max_batch, preview_interval=0.0, **kwargs)

    return factory


@contextlib.asynccontextmanager
async def songe_inprocess(
    world: World, data_dir: Path, *, queue_factory: QueueFactory | None = None, **overrides: str
) -> AsyncIterator[SongeBot]:
    """The real SongeBot in this process (discord.py redirected to the fake), closed on exit."""
    undo = redirect.apply(world.server.base_url)
    settings = Settings.from_env(songe_env(world, data_dir, **overrides))
    bot = SongeBot(settings, queue_factory=queue_factory) if queue_factory else SongeBot(settings)
    identified = world.server.identify_count
    task = asyncio.create_task(bot.start(settings.token))
    try:
        await world.server.wait_until(
            lambda: world.server.identify_count > identified or task.done(), timeout=60, what="the bot"
        )
        if task.done():
            task.result()
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        undo()


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def has_buttons(*labels: str) -> Callable[[Any], bool]:
    """A message predicate: it carries an attachment and buttons with these labels."""

    def check(message: Any) -> bool:
        return bool(message.attachments) and all(label in message.labels for label in labels)

    return check
