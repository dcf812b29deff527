"""/upscale on any earlier result or an attached image, and the message menus Upscale and Vary."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from PIL import Image

from bot.errors import SongeError
from bot.guards import check_channel
from bot.interactions import read_attachment, spec_for, submit_all
from bot.job_types import Envelope, new_job_id
from bot.views.buttons import job_of_message
from quotas import JobStatus

if TYPE_CHECKING:
    from bot.app import SongeBot


class Upscale(commands.Cog):
    def __init__(self, bot: SongeBot) -> None:
        self.bot = bot
        self.menus = [
            app_commands.ContextMenu(name="Upscale", callback=self.upscale_menu),
            app_commands.ContextMenu(name="Vary", callback=self.vary_menu),
        ]

    async def cog_load(self) -> None:
        for menu in self.menus:
            self.bot.tree.add_command(menu)

    async def cog_unload(self) -> None:
        for menu in self.menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)

    @app_commands.command(name="upscale", description="Upscale one image of an earlier job, or an attached image")
    @app_commands.describe(
        job="One of your recent jobs",
        index="Which image of the grid (1-4)",
        kind="Subtle keeps it, creative adds detail",
        image="An image to upscale instead of a job",
    )
    @app_commands.choices(
        kind=[
            app_commands.Choice(name="subtle", value="subtle"),
            app_commands.Choice(name="creative", value="creative"),
        ]
    )
    async def upscale(
        self,
        interaction: discord.Interaction,
        job: str | None = None,
        index: app_commands.Range[int, 1, 4] = 1,
        kind: str = "subtle",
        image: discord.Attachment | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await check_channel(self.bot, interaction)
        creative = kind == "creative"
        if image is not None:
            source = await read_attachment(image)
            with Image.open(io.BytesIO(source)) as probe:
                size = probe.size
            parent = self.bot.requests.for_image(source, size, job_id=new_job_id(), user_id=interaction.user.id)
            request = self.bot.requests.upscale(
                parent, source, job_id=new_job_id(), user_id=interaction.user.id, creative=creative
            )
            await submit_all(
                self.bot, interaction, [spec_for(interaction, request, kind="upscale", display_prompt=image.filename)]
            )
            return
        if not job:
            raise SongeError("error.upscale_needs_job")
        await self._upscale_job(interaction, job.strip().lower(), index, creative=creative)

    async def _upscale_job(self, interaction: discord.Interaction, job_id: str, index: int, *, creative: bool) -> None:
        record = await self.bot.store.job(job_id) if len(job_id) == 32 else None
        if record is None:
            matches = (
                [
                    r
                    for r in await self.bot.store.recent_jobs(interaction.user.id, limit=50)
                    if r.job_id.startswith(job_id)
                ]
                if job_id
                else []
            )
            record = matches[0] if len(matches) == 1 else None
        if record is None or record.status is not JobStatus.SUCCEEDED:
            raise SongeError("error.unknown_job")
        results = self.bot.get_cog("Results")
        envelope = Envelope.loads(record.request)
        await results.upscale_image(interaction, record, envelope, index, creative=creative)  # type: ignore[union-attr]

    @upscale.autocomplete("job")
    async def recent_jobs(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        choices = []
        for record in await self.bot.store.recent_jobs(interaction.user.id, limit=25):
            if record.status is not JobStatus.SUCCEEDED or not record.job_id.startswith(current.lower().strip()):
                continue
            prompt = Envelope.loads(record.request).display_prompt
            choices.append(app_commands.Choice(name=f"{record.job_id[:8]} — {prompt}"[:100], value=record.job_id))
        return choices[:25]

    async def _from_message(self, interaction: discord.Interaction, message: discord.Message) -> tuple[str, int]:
        found = job_of_message(message) if message.author.id == self.bot.user.id else None  # type: ignore[union-attr]
        if found is None:
            raise SongeError("error.not_a_result")
        job_id, index = found
        return job_id, index or 1

    async def upscale_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await check_channel(self.bot, interaction)
        job_id, index = await self._from_message(interaction, message)
        await self._upscale_job(interaction, job_id, index, creative=False)

    async def vary_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        job_id, index = await self._from_message(interaction, message)
        results = self.bot.get_cog("Results")
        await results.handle_button(interaction, "vstr", job_id, index)  # type: ignore[union-attr]


async def setup(bot: SongeBot) -> None:
    await bot.add_cog(Upscale(bot))
