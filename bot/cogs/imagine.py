"""/imagine: a prompt (and optionally an image) to a 2x2 grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.guards import check_channel, check_words
from bot.interactions import read_attachment, spec_for, submit_all
from bot.job_types import new_job_id
from bot.parsing import ParseDefaults, format_parameters, parse_aspect, parse_prompt
from quotas import Mode

if TYPE_CHECKING:
    from bot.app import SongeBot

MAX_JOBS_PER_COMMAND = 4


class Imagine(commands.Cog):
    def __init__(self, bot: SongeBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Create four images from a prompt")
    @app_commands.describe(
        prompt="What to draw, then parameters such as --ar 3:2 --seed 7 --no text",
        image="An image to start from (image prompt)",
    )
    async def imagine(
        self, interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = self.bot
        await check_channel(bot, interaction)
        preferences = await bot.store.preferences(interaction.user.id)
        defaults = ParseDefaults(
            aspect=parse_aspect(preferences.aspect) if preferences.aspect else None,
            stylize=preferences.stylize,
            max_steps=bot.profile.max_steps,
            max_jobs=MAX_JOBS_PER_COMMAND,
        )
        parsed = parse_prompt(prompt, defaults=defaults, macros=preferences.options, suffix=preferences.suffix)
        parameters = format_parameters(parsed)
        for text in parsed.prompts:  # an appeal carries the blocked prompt with its parameters, ready to run
            check_words(bot, text, parsed.negative, appeal=f"{text} {parameters}".strip())
        source = await read_attachment(image) if image is not None else None
        mode = Mode(parsed.mode) if parsed.mode else None
        specs = []
        for text in parsed.prompts:
            for _ in range(parsed.repeat):
                request = bot.requests.imagine(
                    parsed, job_id=new_job_id(), user_id=interaction.user.id, prompt=text, source_image=source
                )
                specs.append(
                    spec_for(
                        interaction, request, kind="imagine", mode=mode, display_prompt=text, parameters=parameters
                    )
                )
        await submit_all(bot, interaction, specs)


async def setup(bot: SongeBot) -> None:
    await bot.add_cog(Imagine(bot))
