"""Operators' decisions on appealed prompts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.errors import reply_error
from bot.guards import check_operator
from bot.i18n import t
from bot.interactions import locale_of
from bot.job_types import JobSpec, new_job_id
from bot.parsing import format_parameters, parse_prompt
from bot.render import format_seconds
from quotas import Mode

if TYPE_CHECKING:
    from bot.app import SongeBot


class Moderation(commands.Cog):
    def __init__(self, bot: SongeBot) -> None:
        self.bot = bot

    async def decide(
        self, interaction: discord.Interaction, verdict: str, user_id: int, channel_id: int, prompt: str
    ) -> None:
        try:
            await check_operator(self.bot, interaction)
            await interaction.response.defer(ephemeral=True, thinking=True)
            locale = locale_of(interaction)
            if verdict == "reject":
                await self._close(interaction, t("appeal.rejected", None, operator=f"<@{interaction.user.id}>"))
                await interaction.edit_original_response(content=t("appeal.rejected_ack", locale))
                return
            parsed = parse_prompt(prompt)
            request = self.bot.requests.imagine(parsed, job_id=new_job_id(), user_id=user_id, prompt=parsed.prompts[0])
            channel = self.bot.get_channel(channel_id)  # the author's channel, maybe in another server than appeals
            guild_id = channel.guild.id if isinstance(channel, discord.abc.GuildChannel) else None
            spec = JobSpec(
                kind="imagine",
                request=request,
                channel_id=channel_id,
                guild_id=guild_id,
                mode=Mode(parsed.mode) if parsed.mode else None,
                display_prompt=parsed.prompts[0],
                parameters=format_parameters(parsed),
            )
            accepted = await self.bot.jobs.submit(spec)
            await self._close(interaction, t("appeal.allowed", None, operator=f"<@{interaction.user.id}>"))
            await interaction.edit_original_response(
                content=t("appeal.allowed_ack", locale, estimate=format_seconds(accepted.reservation.reserved_seconds))
            )
        except Exception as exc:  # every failure becomes an ephemeral answer
            await reply_error(interaction, exc)

    async def _close(self, interaction: discord.Interaction, verdict_line: str) -> None:
        if interaction.message is not None:
            await interaction.message.edit(content=f"{interaction.message.content}\n{verdict_line}", view=None)


async def setup(bot: SongeBot) -> None:
    await bot.add_cog(Moderation(bot))
