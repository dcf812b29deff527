"""A user's preferences (/settings, /prefer), recall (/show) and /help."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import SongeError, reply_error
from bot.guards import check_channel
from bot.i18n import t
from bot.interactions import locale_of
from bot.job_types import Envelope, StoredResult
from bot.parsing import check_option_name, check_options
from bot.render import compose_grid
from bot.views.buttons import grid_view, single_view
from quotas import JobStatus, Mode

if TYPE_CHECKING:
    from bot.app import SongeBot

ASPECTS = ("1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16")
STYLIZE = (("low", 50), ("med", 100), ("high", 250), ("very high", 750))


class SettingsView(discord.ui.View):
    """The /settings panel: selects and toggles, for its owner only, for ten minutes."""

    def __init__(self, bot: SongeBot, owner_id: int, locale: str) -> None:
        super().__init__(timeout=600)
        self.bot = bot
        self.owner_id = owner_id
        self.locale = locale
        self.mode: discord.ui.Select[Any] = discord.ui.Select(
            placeholder=t("settings.mode", locale),
            options=[discord.SelectOption(label=m.value, value=m.value) for m in Mode],
            row=0,
        )
        self.aspect: discord.ui.Select[Any] = discord.ui.Select(
            placeholder=t("settings.aspect", locale),
            options=[discord.SelectOption(label=a, value=a) for a in ASPECTS],
            row=1,
        )
        self.stylize: discord.ui.Select[Any] = discord.ui.Select(
            placeholder=t("settings.stylize", locale),
            options=[discord.SelectOption(label=f"{name} ({value})", value=str(value)) for name, value in STYLIZE],
            row=2,
        )
        self.mode.callback = self.on_mode  # type: ignore[method-assign]
        self.aspect.callback = self.on_aspect  # type: ignore[method-assign]
        self.stylize.callback = self.on_stylize  # type: ignore[method-assign]
        for item in (self.mode, self.aspect, self.stylize):
            self.add_item(item)

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return interaction.user.id == self.owner_id

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: Any, /) -> None:
        await reply_error(interaction, error)

    async def refresh(self, interaction: discord.Interaction) -> None:
        text = await settings_text(self.bot, self.owner_id, self.locale)
        await interaction.response.edit_message(content=text, view=self)

    async def on_mode(self, interaction: discord.Interaction) -> None:
        mode = Mode(self.mode.values[0])
        account = await self.bot.store.account(self.owner_id)
        if (mode is Mode.RELAX and not account.plan.relax_allowed) or (
            mode is Mode.TURBO and not account.plan.turbo_allowed
        ):
            raise SongeError("mode.not_in_plan", mode=mode.value, plan=account.plan.name)
        await self.bot.store.set_mode(self.owner_id, mode)
        await self.refresh(interaction)

    async def on_aspect(self, interaction: discord.Interaction) -> None:
        await self.bot.store.update_preferences(self.owner_id, aspect=self.aspect.values[0])
        await self.refresh(interaction)

    async def on_stylize(self, interaction: discord.Interaction) -> None:
        await self.bot.store.update_preferences(self.owner_id, stylize=int(self.stylize.values[0]))
        await self.refresh(interaction)

    @discord.ui.button(label="Remix", style=discord.ButtonStyle.secondary, row=3)
    async def remix(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        prefs = await self.bot.store.preferences(self.owner_id)
        await self.bot.store.update_preferences(self.owner_id, remix=not prefs.remix)
        await self.refresh(interaction)

    @discord.ui.button(label="Private", style=discord.ButtonStyle.secondary, row=3)
    async def private(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        prefs = await self.bot.store.preferences(self.owner_id)
        account = await self.bot.store.account(self.owner_id)
        if not prefs.private and not account.plan.private_allowed:
            raise SongeError("settings.private_not_in_plan", plan=account.plan.name)
        await self.bot.store.update_preferences(self.owner_id, private=not prefs.private)
        await self.refresh(interaction)


async def settings_text(bot: SongeBot, user_id: int, locale: str) -> str:
    prefs = await bot.store.preferences(user_id)
    account = await bot.store.account(user_id)
    on, off = t("settings.on", locale), t("settings.off", locale)
    return t(
        "settings.summary",
        locale,
        mode=account.mode.value,
        aspect=prefs.aspect or "1:1",
        stylize=prefs.stylize if prefs.stylize is not None else 100,
        remix=on if prefs.remix else off,
        private=on if prefs.private else off,
        suffix=prefs.suffix or "—",
    )


class Settings(commands.Cog):
    prefer = app_commands.Group(name="prefer", description="Your prompt suffix and parameter shortcuts")
    option = app_commands.Group(name="option", description="Named parameter shortcuts", parent=prefer)

    def __init__(self, bot: SongeBot) -> None:
        self.bot = bot

    @app_commands.command(name="settings", description="Your default mode, aspect ratio, stylize, remix and privacy")
    async def settings(self, interaction: discord.Interaction) -> None:
        locale = locale_of(interaction)
        text = await settings_text(self.bot, interaction.user.id, locale)
        await interaction.response.send_message(
            text, view=SettingsView(self.bot, interaction.user.id, locale), ephemeral=True
        )

    @prefer.command(name="suffix", description="Parameters added to every prompt that lacks them (empty to clear)")
    @app_commands.describe(text="Parameters only, e.g. --ar 3:2 --s 250")
    async def suffix(self, interaction: discord.Interaction, text: app_commands.Range[str, 0, 200] = "") -> None:
        prefs = await self.bot.store.preferences(interaction.user.id)
        suffix = check_options(text, param="suffix", macros=prefs.options) if text.strip() else ""
        await self.bot.store.update_preferences(interaction.user.id, suffix=suffix)
        await interaction.response.send_message(
            t("prefer.suffix_set" if suffix else "prefer.suffix_cleared", locale_of(interaction), suffix=suffix),
            ephemeral=True,
        )

    @option.command(name="set", description="Make --name stand for some parameters, e.g. --mine = --ar 3:2 --s 250")
    async def option_set(
        self, interaction: discord.Interaction, name: str, value: app_commands.Range[str, 1, 200]
    ) -> None:
        name = check_option_name(name)
        value = check_options(value)
        await self.bot.store.set_option(interaction.user.id, name, value)
        await interaction.response.send_message(
            t("prefer.option_set", locale_of(interaction), name=name, value=value), ephemeral=True
        )

    @option.command(name="list", description="Your parameter shortcuts")
    async def option_list(self, interaction: discord.Interaction) -> None:
        prefs = await self.bot.store.preferences(interaction.user.id)
        lines = [f"`--{k}` = `{v}`" for k, v in sorted(prefs.options.items())] or [
            t("prefer.none", locale_of(interaction))
        ]
        await interaction.response.send_message("\n".join(lines)[:2000], ephemeral=True)

    @option.command(name="delete", description="Remove a parameter shortcut")
    async def option_delete(self, interaction: discord.Interaction, name: str) -> None:
        await self.bot.store.set_option(interaction.user.id, name.strip().lstrip("-").lower(), None)
        await interaction.response.send_message(
            t("prefer.option_deleted", locale_of(interaction), name=name), ephemeral=True
        )

    @app_commands.command(name="show", description="Post an earlier result again, with working buttons")
    async def show(self, interaction: discord.Interaction, job: str) -> None:
        await check_channel(self.bot, interaction)
        job_id = job.strip().lower()
        record = await self.bot.store.job(job_id) if len(job_id) == 32 else None
        if record is None:
            matches = (
                [
                    r
                    for r in await self.bot.store.recent_jobs(interaction.user.id, limit=100)
                    if r.job_id.startswith(job_id)
                ]
                if job_id
                else []
            )
            record = matches[0] if len(matches) == 1 else None
        if record is None or record.status is not JobStatus.SUCCEEDED or record.result is None:
            raise SongeError("error.unknown_job")
        await interaction.response.defer(thinking=True)
        result = StoredResult.loads(record.result)
        images = await asyncio.to_thread(self.bot.files.read_all, record.job_id, len(result.files))
        data = images[0] if len(images) == 1 else await asyncio.to_thread(compose_grid, images, blur=result.nsfw)
        envelope = Envelope.loads(record.request)
        view = single_view(record.job_id, 1) if len(images) == 1 else grid_view(record.job_id)
        prompt = discord.utils.escape_markdown(envelope.display_prompt)[:1500]
        await interaction.followup.send(
            f"**{prompt}** {envelope.parameters} — <@{record.user_id}>",
            file=discord.File(io.BytesIO(data), filename=f"songe_{record.job_id[:12]}.png", spoiler=any(result.nsfw)),
            view=view,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @app_commands.command(name="help", description="How to use Songe")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(t("help.text", locale_of(interaction)), ephemeral=True)


async def setup(bot: SongeBot) -> None:
    await bot.add_cog(Settings(bot))
