"""The one map from exceptions to what the user reads: always ephemeral, always with a hint.

    SongeError                 raised by the bot's own code with a catalogue key
     ├── NotOperator           an admin command or button used by someone who is not an operator
     ├── NotAllowedHere        the server's policy (channels, author-only buttons) refuses it
     └── PromptBlocked         the banned-words filter matched
    attachments.BadAttachment  an attached file that is not a usable image
    parsing.PromptError        a bad parameter (names it and what is allowed)
    quotas.QuotaError ...      refusals of the ledger (out of time, limits, cooldown, ban)
    jobs.QueueRefused          the generation queue is unavailable (nothing was charged)

Anything else is logged with a short reference id that the user sees.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import discord
from discord import app_commands

from bot.attachments import BadAttachment
from bot.i18n import t
from bot.job_types import DeliveryError, QueueRefused
from bot.parsing import PromptError
from bot.render import format_seconds
from bot.views.appeal import AppealView
from quotas import (
    AccountTooNew,
    Banned,
    Cooldown,
    LaneNotAllowed,
    LimitReached,
    OutOfFastTime,
    QuotaError,
    UnknownJob,
    UnknownPlan,
)

log = logging.getLogger(__name__)


class SongeError(Exception):
    """An error whose text is catalogue key `key` with `values`."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


class NotOperator(SongeError, app_commands.CheckFailure):
    def __init__(self) -> None:
        super().__init__("error.not_operator")


class NotAllowedHere(SongeError, app_commands.CheckFailure):
    """Also a `CheckFailure`, so that raised from a cog's `interaction_check` it reaches the tree's `on_error`."""


class PromptBlocked(SongeError):
    def __init__(self, word: str, prompt: str) -> None:
        super().__init__("error.blocked", word=word)
        self.word = word
        self.prompt = prompt


def _time(seconds: float | None) -> str:
    return format_seconds(seconds or 0.0)


def _ways_out(exc: OutOfFastTime, locale: str | None, upgrade_url: str) -> list[str]:
    """What a user out of fast time can do: drop turbo, wait for the renewal, move to a plan with relax, ask."""
    ways = [t("hint.turbo_fits", locale)] if exc.fast_would_fit else []
    if exc.renews_at is not None:
        ways.append(t("hint.renews", locale, date=discord.utils.format_dt(exc.renews_at, "D")))
    if exc.upgrades:
        ways.append(t("hint.relax_plans", locale, plans=", ".join(exc.upgrades)))
    ways.append(t("hint.upgrade_url", locale, url=upgrade_url) if upgrade_url else t("hint.ask_operator", locale))
    return ways


def describe(exc: BaseException, locale: str | None, *, upgrade_url: str = "") -> str | None:
    """The user text for a known error, or None for an unexpected one."""
    if isinstance(exc, app_commands.CommandInvokeError):
        exc = exc.original
    if isinstance(exc, (SongeError, BadAttachment)):
        return t(exc.key, locale, **exc.values)
    if isinstance(exc, PromptError):
        return t("error.parameter", locale, param=exc.param, detail=t(exc.message_key, locale, **exc.values))
    if isinstance(exc, OutOfFastTime):
        hint = "\n".join(_ways_out(exc, locale, upgrade_url))
        return t("error.out_of_time", locale, remaining=_time(exc.remaining_seconds), plan=exc.plan, hint=hint)
    if isinstance(exc, LimitReached):
        return t(f"error.limit_{exc.kind}", locale, limit=exc.limit)
    if isinstance(exc, Cooldown):
        return t("error.cooldown", locale, wait=_time(exc.retry_after_seconds))
    if isinstance(exc, AccountTooNew):
        return t("error.account_too_new", locale, days=exc.min_days)
    if isinstance(exc, Banned):
        return t("error.banned", locale)
    if isinstance(exc, LaneNotAllowed):
        return t("error.lane_not_allowed", locale, mode=getattr(exc.mode, "value", exc.mode), plan=exc.plan)
    if isinstance(exc, UnknownJob):
        return t("error.unknown_job", locale)
    if isinstance(exc, UnknownPlan):
        return t("error.unknown_plan", locale, plan=exc.name, plans=", ".join(exc.known))
    if isinstance(exc, QuotaError):
        return t("error.quota", locale)
    if isinstance(exc, QueueRefused):
        return t("error.queue_unavailable", locale)
    if isinstance(exc, DeliveryError):
        return t("error.cannot_post", locale)
    if isinstance(exc, app_commands.CheckFailure):
        return t("error.not_allowed", locale)
    return None


async def reply_error(interaction: discord.Interaction, exc: BaseException) -> None:
    """Answer `interaction` with the text for `exc`, ephemerally, by whichever route is open."""
    if isinstance(exc, app_commands.CommandInvokeError):
        exc = exc.original
    settings = getattr(interaction.client, "settings", None)
    locale = str(interaction.locale) if interaction.locale else None
    text = describe(exc, locale, upgrade_url=settings.upgrade_url if settings else "")
    if text is None:
        reference = secrets.token_hex(4)
        log.error(
            "unexpected error ref=%s user=%s command=%s",
            reference,
            interaction.user.id if interaction.user else None,
            interaction.command.qualified_name if interaction.command else interaction.data,
            exc_info=exc,
        )
        text = t("error.unexpected", locale, reference=reference)
    extra: dict[str, Any] = {}
    if isinstance(exc, PromptBlocked):
        extra["view"] = AppealView(exc.prompt, exc.word, locale or "en-US")
    if isinstance(exc, OutOfFastTime) and settings is not None and settings.sku_plans:
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(style=discord.ButtonStyle.premium, sku_id=next(iter(settings.sku_plans))))
        extra["view"] = view
    await send_ephemeral(interaction, text, **extra)


async def send_ephemeral(interaction: discord.Interaction, text: str, **kwargs: Any) -> None:
    """Ephemeral text through the response, or a followup when the response is used."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, **kwargs)
        else:
            await interaction.response.send_message(text, ephemeral=True, **kwargs)
    except discord.HTTPException:
        log.warning("could not answer interaction %s", interaction.id, exc_info=True)
