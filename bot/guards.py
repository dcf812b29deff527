"""Checks made on the bot's side before any work: server policy, author-only buttons, operators."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.errors import NotAllowedHere, NotOperator, PromptBlocked

if TYPE_CHECKING:
    from bot.app import SongeBot


async def check_channel(bot: SongeBot, interaction: discord.Interaction) -> None:
    """The server's managers may limit Songe to some channels; direct messages are refused."""
    if interaction.guild_id is None:
        raise NotAllowedHere("error.guild_only")
    policy = await bot.store.guild_policy(interaction.guild_id)
    if policy.allowed_channel_ids and interaction.channel_id not in policy.allowed_channel_ids:
        raise NotAllowedHere("error.channel_not_allowed")


async def check_button(bot: SongeBot, interaction: discord.Interaction, author_id: int) -> None:
    """Anyone may click (and is charged), unless the server made buttons author-only.

    A result that reached its author by direct message (its channel was gone) works there for them.
    """
    if interaction.guild_id is None and interaction.user.id == author_id:
        return
    await check_channel(bot, interaction)
    if interaction.user.id == author_id:
        return
    policy = await bot.store.guild_policy(interaction.guild_id or 0)
    if policy.author_only_buttons:
        raise NotAllowedHere("error.author_only")


async def check_operator(bot: SongeBot, interaction: discord.Interaction) -> None:
    """Operators only; a server's own administrators are not operators."""
    if not await bot.is_operator(interaction.user):
        raise NotOperator()


def check_words(bot: SongeBot, *texts: str, appeal: str | None = None) -> None:
    """The banned-words filter, before anything is reserved; `appeal` is the prompt an Appeal sends (default: the
    texts joined)."""
    for text in texts:
        match = bot.word_filter.check(text)
        if match is not None:
            raise PromptBlocked(match.word, " ".join(texts) if appeal is None else appeal)
