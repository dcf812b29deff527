"""/server: a server's managers set where Songe answers, NSFW in age-restricted channels, author-only buttons.

These settings never touch quotas. The Manage Server permission is checked on the bot's side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import NotAllowedHere
from bot.i18n import t
from bot.interactions import locale_of

if TYPE_CHECKING:
    from bot.app import SongeBot


class Server(commands.GroupCog, group_name="server", group_description="Server managers: where and how Songe answers"):
    def __init__(self, bot: SongeBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        if interaction.guild_id is None:
            raise NotAllowedHere("error.guild_only")
        if not interaction.permissions.manage_guild:
            raise NotAllowedHere("error.manage_server_only")
        return True

    async def _summary(self, interaction: discord.Interaction, header_key: str) -> None:
        policy = await self.bot.store.guild_policy(interaction.guild_id or 0)
        locale = locale_of(interaction)
        channels = ", ".join(f"<#{c}>" for c in sorted(policy.allowed_channel_ids)) or t("server.all_channels", locale)
        text = t(
            "server.summary",
            locale,
            channels=channels,
            nsfw=t("settings.on" if policy.nsfw_in_age_restricted else "settings.off", locale),
            author_only=t("settings.on" if policy.author_only_buttons else "settings.off", locale),
        )
        await interaction.response.send_message(f"{t(header_key, locale)}\n{text}", ephemeral=True)

    @app_commands.command(
        name="channel-allow", description="Let Songe answer in this channel (then only in allowed ones)"
    )
    async def channel_allow(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        policy = await self.bot.store.guild_policy(interaction.guild_id or 0)
        await self.bot.store.update_guild_policy(
            interaction.guild_id or 0, allowed_channel_ids=policy.allowed_channel_ids | {channel.id}
        )
        await self._summary(interaction, "server.updated")

    @app_commands.command(name="channel-remove", description="Stop answering in this channel")
    async def channel_remove(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        policy = await self.bot.store.guild_policy(interaction.guild_id or 0)
        await self.bot.store.update_guild_policy(
            interaction.guild_id or 0, allowed_channel_ids=policy.allowed_channel_ids - {channel.id}
        )
        await self._summary(interaction, "server.updated")

    @app_commands.command(name="channels-all", description="Answer in every channel again")
    async def channels_all(self, interaction: discord.Interaction) -> None:
        await self.bot.store.update_guild_policy(interaction.guild_id or 0, allowed_channel_ids=frozenset())
        await self._summary(interaction, "server.updated")

    @app_commands.command(name="nsfw", description="Show flagged images plainly in age-restricted channels")
    async def nsfw(self, interaction: discord.Interaction, allowed: bool) -> None:
        await self.bot.store.update_guild_policy(interaction.guild_id or 0, nsfw_in_age_restricted=allowed)
        await self._summary(interaction, "server.updated")

    @app_commands.command(name="buttons", description="Whether only a result's author may use its buttons")
    async def buttons(self, interaction: discord.Interaction, author_only: bool) -> None:
        await self.bot.store.update_guild_policy(interaction.guild_id or 0, author_only_buttons=author_only)
        await self._summary(interaction, "server.updated")

    @app_commands.command(name="show", description="This server's Songe settings")
    async def show(self, interaction: discord.Interaction) -> None:
        await self._summary(interaction, "server.current")


async def setup(bot: SongeBot) -> None:
    await bot.add_cog(Server(bot))
