"""Operators' decisions on appealed prompts.

An appeal is decided once: clicks on it while a decision is under way are turned away, and an Allow runs the job
under an id derived from the appeal's message, so a second Allow (after a restart that left the buttons) finds
the job already there instead of charging the author again.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.errors import reply_error, send_ephemeral
from bot.guards import check_operator
from bot.i18n import t
from bot.interactions import locale_of
from bot.job_types import JobSpec
from bot.parsing import format_parameters, parse_prompt
from bot.render import format_seconds
from quotas import Mode

if TYPE_CHECKING:
    from bot.app import SongeBot


def appeal_job_id(appeal_message_id: int) -> str:
    """The id of the job an Allow runs: one per appeal message."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"songe:appeal:{appeal_message_id}").hex


class Moderation(commands.Cog):
    def __init__(self, bot: SongeBot) -> None:
        self.bot = bot
        self._deciding: set[int] = set()  # appeal messages whose decision is under way

    async def decide(
        self, interaction: discord.Interaction, verdict: str, user_id: int, channel_id: int, prompt: str
    ) -> None:
        appeal_id = interaction.message.id if interaction.message else interaction.id
        try:
            await check_operator(self.bot, interaction)
            locale = locale_of(interaction)
            if appeal_id in self._deciding:
                await send_ephemeral(interaction, t("appeal.busy", locale))
                return
            self._deciding.add(appeal_id)
            try:
                await self._decide(interaction, locale, appeal_id, verdict, user_id, channel_id, prompt)
            finally:
                self._deciding.discard(appeal_id)
        except Exception as exc:  # every failure becomes an ephemeral answer
            await reply_error(interaction, exc)

    async def _decide(
        self,
        interaction: discord.Interaction,
        locale: str,
        appeal_id: int,
        verdict: str,
        user_id: int,
        channel_id: int,
        prompt: str,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        if verdict == "reject":
            await self._close(interaction, t("appeal.rejected", None, operator=f"<@{interaction.user.id}>"))
            await interaction.edit_original_response(content=t("appeal.rejected_ack", locale))
            return
        job_id = appeal_job_id(appeal_id)
        if await self.bot.store.job(job_id) is not None:
            await self._close(interaction, None)
            await interaction.edit_original_response(content=t("appeal.already_allowed", locale))
            return
        parsed = parse_prompt(prompt)
        request = self.bot.requests.imagine(parsed, job_id=job_id, user_id=user_id, prompt=parsed.prompts[0])
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

    async def _close(self, interaction: discord.Interaction, verdict_line: str | None) -> None:
        """Take the buttons off the appeal, adding the verdict's line under it."""
        if interaction.message is not None:
            content = interaction.message.content + (f"\n{verdict_line}" if verdict_line else "")
            await interaction.message.edit(content=content, view=None)


async def setup(bot: SongeBot) -> None:
    await bot.add_cog(Moderation(bot))
