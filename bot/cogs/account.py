"""A user's own account: /info, /ledger, /fast, /relax, /turbo."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t
from bot.interactions import locale_of
from bot.render import format_seconds
from quotas import AccountView, Mode

if TYPE_CHECKING:
    from bot.app import SongeBot


def info_text(account: AccountView, *, seconds_per_grid: float, locale: str) -> str:
    """The /info card: plan, mode, fast time x/y (z%), grids left, renewal, usage, queue."""
    total = account.fast_period_total + account.extra_seconds
    remaining = account.fast_remaining + account.extra_seconds
    percent = round(100 * remaining / total) if total > 0 else 0
    grids = int(remaining / seconds_per_grid) if seconds_per_grid > 0 else 0
    renews = discord.utils.format_dt(account.renews_at, "D") if account.renews_at else t("info.never", locale)
    lines = [
        t("info.plan", locale, plan=account.plan.name),
        t("info.mode", locale, mode=account.mode.value),
        t("info.fast_time", locale, remaining=format_seconds(remaining), total=format_seconds(total), percent=percent),
        t("info.grids", locale, grids=grids),
        t("info.renews", locale, date=renews),
        t("info.lifetime", locale, images=account.lifetime_images, gpu=format_seconds(account.lifetime_gpu_seconds)),
        t("info.relax", locale, relax=format_seconds(account.relax_seconds_period)),
        t("info.jobs", locale, queued=account.queued, running=account.running),
    ]
    if account.extra_seconds > 0:
        lines.insert(3, t("info.extra", locale, extra=format_seconds(account.extra_seconds)))
    if account.banned:
        lines.append(t("info.banned", locale))
    return "\n".join(lines)


class Account(commands.Cog):
    def __init__(self, bot: SongeBot) -> None:
        self.bot = bot

    async def seconds_per_grid(self) -> float:
        """GPU seconds one default 2x2 grid costs at the measured speed."""
        profile = self.bot.profile
        units = (profile.base_resolution**2) / 1_000_000 * profile.steps * 4
        return units * await self.bot.store.seconds_per_unit()

    @app_commands.command(name="info", description="Your plan, fast time left, usage and queued jobs")
    async def info(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        account = await self.bot.store.account(interaction.user.id)
        text = info_text(account, seconds_per_grid=await self.seconds_per_grid(), locale=locale_of(interaction))
        await interaction.edit_original_response(content=text)

    @app_commands.command(name="ledger", description="Your last charges, refunds and grants")
    async def ledger(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        locale = locale_of(interaction)
        entries = await self.bot.store.ledger(interaction.user.id, limit=20)
        if not entries:
            await interaction.edit_original_response(content=t("ledger.empty", locale))
            return
        lines = [t("ledger.header", locale)]
        for entry in entries:
            sign = "+" if entry.seconds >= 0 else "−"
            job = f" `{entry.job_id[:8]}`" if entry.job_id else ""
            reason = f" — {discord.utils.escape_markdown(entry.reason)}" if entry.reason else ""
            lines.append(
                f"{discord.utils.format_dt(entry.at, 'd')} {t('ledger.kind.' + entry.kind, locale)}{job} "
                f"{sign}{format_seconds(abs(entry.seconds))}{reason}"
            )
        await interaction.edit_original_response(content="\n".join(lines)[:2000])

    async def _set_mode(self, interaction: discord.Interaction, mode: Mode) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        account = await self.bot.store.account(interaction.user.id)
        locale = locale_of(interaction)
        if mode is Mode.RELAX and not account.plan.relax_allowed:
            await interaction.edit_original_response(
                content=t("mode.relax_not_in_plan", locale, plan=account.plan.name)
            )
            return
        if mode is Mode.TURBO and not account.plan.turbo_allowed:
            await interaction.edit_original_response(
                content=t("mode.turbo_not_in_plan", locale, plan=account.plan.name)
            )
            return
        await self.bot.store.set_mode(interaction.user.id, mode)
        await interaction.edit_original_response(content=t(f"mode.set_{mode.value}", locale))

    @app_commands.command(name="fast", description="Use fast mode (spends fast GPU time)")
    async def fast(self, interaction: discord.Interaction) -> None:
        await self._set_mode(interaction, Mode.FAST)

    @app_commands.command(name="relax", description="Use relax mode (free, waits longer)")
    async def relax(self, interaction: discord.Interaction) -> None:
        await self._set_mode(interaction, Mode.RELAX)

    @app_commands.command(name="turbo", description="Use turbo mode (fastest, costs twice the time)")
    async def turbo(self, interaction: discord.Interaction) -> None:
        await self._set_mode(interaction, Mode.TURBO)


async def setup(bot: SongeBot) -> None:
    await bot.add_cog(Account(bot))
