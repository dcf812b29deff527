"""The bot: opens the store and the generation queue, loads one cog per feature, registers buttons."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.config import Settings
from bot.delivery import DiscordPresenter
from bot.errors import reply_error
from bot.files import ImageFiles
from bot.i18n import SongeTranslator
from bot.jobs import JobService
from bot.moderation import WordFilter
from bot.pacing import Pacer
from bot.profile import model_profile
from bot.requests import RequestFactory
from bot.views.appeal import AppealDecision
from bot.views.buttons import JobButton, UnknownButton
from pipelines.queue import GenerationQueue
from quotas import QuotaSettings, QuotaStore

log = logging.getLogger(__name__)

COGS = (
    "bot.cogs.imagine",
    "bot.cogs.results",
    "bot.cogs.upscale",
    "bot.cogs.account",
    "bot.cogs.admin",
    "bot.cogs.settings",
    "bot.cogs.server",
    "bot.cogs.moderation",
)

HTTP_CONNECTIONS = 64
"""Open connections to Discord's API at most. discord.py's default is unlimited: a burst of a thousand interactions
then opens a thousand connections (a thousand TLS handshakes) at once instead of reusing a few kept alive."""

QueueFactory = Callable[[Settings], Awaitable[GenerationQueue]]


async def default_queue(settings: Settings) -> GenerationQueue:
    """The generation queue the settings ask for: in-process GPU worker, or NATS workers."""
    if settings.queue == "nats":
        from pipelines.nats_queue import NatsQueue

        return NatsQueue(settings.nats_url, creds=str(settings.nats_creds) if settings.nats_creds else None)
    from pipelines.loading import load_engine
    from pipelines.worker import LocalQueue

    engine = await asyncio.to_thread(
        load_engine,
        settings.model,
        device=settings.device,
        dtype=settings.dtype,
        compile=settings.compile,
        upscaler=settings.upscaler,
        ip_adapter=settings.ip_adapter,
        taesd=settings.taesd,
    )
    return LocalQueue(engine, max_batch=settings.max_batch)


class SongeTree(app_commands.CommandTree["SongeBot"]):
    """Paces bursts of commands (`bot.pacing`) and routes every command error to the one error map."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        await self.client.pacer.turn()
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await reply_error(interaction, error)


class SongeBot(commands.AutoShardedBot):
    """Songe's Discord client. `store`, `queue` and `jobs` exist once `setup_hook` ran."""

    store: QuotaStore
    queue: GenerationQueue
    jobs: JobService

    def __init__(self, settings: Settings, *, queue_factory: QueueFactory = default_queue) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            tree_cls=SongeTree,
            allowed_mentions=discord.AllowedMentions.none(),
            max_messages=None,
            connector=aiohttp.TCPConnector(limit=HTTP_CONNECTIONS),
        )
        self.settings = settings
        self.queue_factory = queue_factory
        self.files = ImageFiles(settings.images_dir)
        self.profile = model_profile(settings)
        self.requests = RequestFactory(self.profile)
        self.word_filter = WordFilter.from_file(settings.banned_words) if settings.banned_words else WordFilter(())
        self.ready_event = asyncio.Event()
        self.pacer = Pacer()

    async def setup_hook(self) -> None:
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        self.store = await QuotaStore.open(
            self.settings.database_path,
            settings=QuotaSettings(
                free_trial_seconds=self.settings.free_seconds,
                free_daily_topup_seconds=self.settings.free_daily_topup_seconds,
                free_cooldown_seconds=self.settings.free_cooldown_seconds,
                min_account_age_days=self.settings.min_account_age_days,
            ),
        )
        self.queue = await self.queue_factory(self.settings)
        self.jobs = JobService(store=self.store, queue=self.queue, files=self.files, presenter=DiscordPresenter(self))
        await self.queue.start(self.jobs.on_event)
        await self.tree.set_translator(SongeTranslator())
        for name in COGS:
            try:
                await self.load_extension(name)
            except commands.ExtensionError:
                log.exception("cog %s failed to load and is skipped", name)
        self.add_dynamic_items(JobButton, UnknownButton, AppealDecision)
        if self.settings.guild_id:  # one server, at once (development, a private bot)
            guild = discord.Object(self.settings.guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:  # every server (Discord may take a while to show new commands)
            await self.tree.sync()
        await self.jobs.recover()
        # Everything loaded so far (discord.py, the model, the store) lives as long as the process: keep it out of
        # the garbage collector's full passes, and run those passes less often, since each stalls the event loop
        # (up to 120 ms in a burst of a thousand interactions, measured by bench/bench_load.py).
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)
        self.reconciler = asyncio.create_task(
            self.jobs.run_reconciler(deadline=timedelta(minutes=self.settings.job_deadline_minutes), interval=60.0)
        )

    async def on_ready(self) -> None:
        log.info("connected as %s to %d servers", self.user, len(self.guilds))
        self.ready_event.set()

    async def is_operator(self, user: discord.abc.User) -> bool:
        """Operators: SONGE_OPERATOR_IDS, or the application's owner or team members."""
        if user.id in self.settings.operator_ids:
            return True
        return await self.is_owner(user)

    async def close(self) -> None:
        """Stop taking jobs, let the running batch finish (bounded), persist the rest, close."""
        if hasattr(self, "reconciler"):
            self.reconciler.cancel()
        if hasattr(self, "jobs"):
            self.jobs.accepting = False
            self.queue.pause()
            await self.jobs.drain(timeout=30.0)
            await self.queue.close()
            await self.jobs.close()
            await self.store.close()
        await super().close()
