"""/admin: the bot's operators manage quotas, plans and the queue.

Quotas are per user across every server, so a server's own administrators are not
operators: every command checks `SongeBot.is_operator` on the bot's side, whatever
Discord's `default_permissions` shows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.account import info_text
from bot.errors import SongeError
from bot.guards import check_operator
from bot.i18n import t
from bot.interactions import locale_of
from bot.render import format_seconds
from quotas import AccountView, Stats

if TYPE_CHECKING:
    from bot.app import SongeBot

PLAN_FIELDS = (
    "fast_seconds",
    "daily_topup_seconds",
    "relax_allowed",
    "turbo_allowed",
    "max_concurrent_fast",
    "max_concurrent_relax",
    "max_queued",
    "renewal",
)


def parse_date(text: str) -> datetime:
    """`YYYY-MM-DD` (UTC) for plan end dates."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise SongeError("error.date_format") from None


def parse_plan_value(field: str, raw: str) -> object:
    """A plan column's value from text: hours for times, yes/no for flags, counts, renewal kind."""
    raw = raw.strip().lower()
    if field.endswith("_seconds"):
        try:
            hours = float(raw.removesuffix("h"))
        except ValueError:
            raise SongeError("error.plan_value", field=field, expected="hours, e.g. 15 or 0.4") from None
        if hours < 0:
            raise SongeError("error.plan_value", field=field, expected="hours >= 0")
        return hours * 3600
    if field.endswith("_allowed"):
        if raw not in {"yes", "no", "true", "false", "oui", "non"}:
            raise SongeError("error.plan_value", field=field, expected="yes or no")
        return raw in {"yes", "true", "oui"}
    if field == "renewal":
        if raw not in {"none", "monthly"}:
            raise SongeError("error.plan_value", field=field, expected="none or monthly")
        return raw
    if not (raw.isascii() and raw.isdigit()):  # str.isdigit also takes "⑤" and "²", which int() refuses
        raise SongeError("error.plan_value", field=field, expected="a whole number")
    return int(raw)


def stats_text(stats: Stats, *, days: int, depth: int, locale: str) -> str:
    """/admin stats: jobs by status, images, GPU time, users by plan, and the queue now."""
    jobs = (
        ", ".join(
            f"{count} {t('job.status.' + status.value, locale)}"
            for status, count in stats.jobs_by_status.items()
            if count
        )
        or "0"
    )
    plans = ", ".join(f"{plan} {count}" for plan, count in stats.users_by_plan.items()) or "—"
    return t(
        "admin.stats",
        locale,
        days=days,
        jobs=jobs,
        images=stats.images,
        gpu=format_seconds(stats.gpu_seconds),
        charged=format_seconds(stats.charged_seconds),
        active=stats.active_users,
        new=stats.new_users,
        plans=plans,
        depth=depth,
    )


class Admin(commands.GroupCog, group_name="admin", group_description="Operators: quotas, plans and the queue"):
    """Every subcommand is refused to anyone who is not an operator."""

    def __init__(self, bot: SongeBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        await check_operator(self.bot, interaction)
        return True

    async def _answer(self, interaction: discord.Interaction, text: str) -> None:
        if interaction.response.is_done():
            await interaction.edit_original_response(content=text[:2000])
        else:
            await interaction.response.send_message(text[:2000], ephemeral=True)

    async def _show(self, interaction: discord.Interaction, account: AccountView, header: str) -> None:
        account_cog = self.bot.get_cog("Account")
        per_grid = await account_cog.seconds_per_grid() if account_cog else 0.0  # type: ignore[attr-defined]
        text = info_text(account, seconds_per_grid=per_grid, locale=locale_of(interaction))
        await self._answer(interaction, f"{header}\n{text}")

    @app_commands.command(name="user", description="Show a user's account")
    async def user(self, interaction: discord.Interaction, user: discord.User) -> None:
        account = await self.bot.store.account(user.id)
        await self._show(interaction, account, f"**{user}** (`{user.id}`)")

    @app_commands.command(name="grant", description="Add (or remove) GPU time; it never expires")
    @app_commands.describe(hours="Hours of fast time (negative to remove)", reason="Why (kept in the ledger)")
    async def grant(self, interaction: discord.Interaction, user: discord.User, hours: float, reason: str) -> None:
        account = await self.bot.store.grant(user.id, hours * 3600, operator_id=interaction.user.id, reason=reason)
        await self._show(
            interaction,
            account,
            t("admin.granted", locale_of(interaction), user=user.mention, amount=format_seconds(abs(hours) * 3600)),
        )

    @app_commands.command(name="plan", description="Set a user's plan, optionally until a date")
    @app_commands.describe(until="Last day of the plan, YYYY-MM-DD (optional)")
    async def plan(
        self, interaction: discord.Interaction, user: discord.User, plan: str, until: str | None = None
    ) -> None:
        end = parse_date(until) + timedelta(days=1) if until else None
        account = await self.bot.store.set_plan(user.id, plan, operator_id=interaction.user.id, until=end)
        await self._show(
            interaction, account, t("admin.plan_set", locale_of(interaction), user=user.mention, plan=plan)
        )

    @plan.autocomplete("plan")
    async def plan_names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        plans = await self.bot.store.plans()
        return [app_commands.Choice(name=p.name, value=p.name) for p in plans if current.lower() in p.name][:25]

    @app_commands.command(name="reset", description="Refill a user's plan allowance for this period")
    async def reset(self, interaction: discord.Interaction, user: discord.User) -> None:
        account = await self.bot.store.reset(user.id, operator_id=interaction.user.id)
        await self._show(interaction, account, t("admin.reset", locale_of(interaction), user=user.mention))

    @app_commands.command(name="ban", description="Refuse every job from a user, everywhere")
    async def ban(self, interaction: discord.Interaction, user: discord.User, reason: str) -> None:
        await self.bot.store.ban(user.id, operator_id=interaction.user.id, reason=reason)
        await self._answer(interaction, t("admin.banned", locale_of(interaction), user=user.mention))

    @app_commands.command(name="unban", description="Lift a ban")
    async def unban(self, interaction: discord.Interaction, user: discord.User) -> None:
        await self.bot.store.unban(user.id, operator_id=interaction.user.id)
        await self._answer(interaction, t("admin.unbanned", locale_of(interaction), user=user.mention))

    @app_commands.command(name="plans", description="List the plans and their numbers")
    async def plans(self, interaction: discord.Interaction) -> None:
        lines = []
        for p in await self.bot.store.plans():
            lines.append(
                f"**{p.name}** — {format_seconds(p.fast_seconds)} fast/{p.renewal}, "
                f"relax {'✓' if p.relax_allowed else '✗'}, turbo {'✓' if p.turbo_allowed else '✗'}, "
                f"{p.max_concurrent_fast} fast / {p.max_concurrent_relax} relax at once, {p.max_queued} queued"
            )
        await self._answer(interaction, "\n".join(lines))

    @app_commands.command(name="plan-edit", description="Change one number of a plan")
    @app_commands.describe(field="What to change", value="Hours for times, yes/no for flags, a count for limits")
    @app_commands.choices(field=[app_commands.Choice(name=f, value=f) for f in PLAN_FIELDS])
    async def plan_edit(self, interaction: discord.Interaction, plan: str, field: str, value: str) -> None:
        if field not in PLAN_FIELDS:
            raise SongeError("error.plan_value", field=field, expected=", ".join(PLAN_FIELDS))
        updated = await self.bot.store.update_plan(
            plan, operator_id=interaction.user.id, **{field: parse_plan_value(field, value)}
        )
        await self._answer(interaction, t("admin.plan_edited", locale_of(interaction), plan=updated.name, field=field))

    @plan_edit.autocomplete("plan")
    async def plan_edit_names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await self.plan_names(interaction, current)

    @app_commands.command(name="stats", description="Jobs, GPU time and users by plan over the last days")
    async def stats(self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 365] = 30) -> None:
        since = datetime.now(UTC) - timedelta(days=days)
        stats = await self.bot.store.stats(since=since)
        depth = await self.bot.queue.depth()
        await self._answer(interaction, stats_text(stats, days=days, depth=depth, locale=locale_of(interaction)))

    @app_commands.command(name="pause", description="Stop starting new jobs (the running batch finishes)")
    async def pause(self, interaction: discord.Interaction) -> None:
        self.bot.queue.pause()
        await self.bot.store.record_action("pause", operator_id=interaction.user.id)
        await self._answer(interaction, t("admin.paused", locale_of(interaction)))

    @app_commands.command(name="resume", description="Start jobs again")
    async def resume(self, interaction: discord.Interaction) -> None:
        self.bot.queue.resume()
        await self.bot.store.record_action("resume", operator_id=interaction.user.id)
        await self._answer(interaction, t("admin.resumed", locale_of(interaction)))

    @app_commands.command(name="backup", description="Copy the database safely while the bot runs")
    async def backup(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        folder = self.bot.settings.data_dir / "backups"
        folder.mkdir(mode=0o700, exist_ok=True)
        dest = folder / f"songe-{datetime.now(UTC):%Y%m%d-%H%M%S}.sqlite3"
        await self.bot.store.backup(dest)
        await self.bot.store.record_action("backup", operator_id=interaction.user.id, path=str(dest))
        await self._answer(interaction, t("admin.backup", locale_of(interaction), path=str(dest)))


async def setup(bot: SongeBot) -> None:
    await bot.add_cog(Admin(bot))
