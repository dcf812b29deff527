"""Helpers shared by the cogs: from an interaction to job specs, and the acceptance reply."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import discord

from bot.attachments import MAX_BYTES, BadAttachment, normalise_image
from bot.i18n import t
from bot.job_types import JobSpec
from bot.render import format_seconds
from pipelines.types import GenerationRequest
from quotas import Mode

if TYPE_CHECKING:
    from bot.app import SongeBot


def locale_of(interaction: discord.Interaction) -> str:
    return str(interaction.locale)


def spec_for(
    interaction: discord.Interaction,
    request: GenerationRequest,
    *,
    kind: str,
    mode: Mode | None = None,
    display_prompt: str = "",
    parameters: str = "",
    parent_job_id: str | None = None,
    image_index: int | None = None,
    private: bool = False,
) -> JobSpec:
    """A job spec charged to whoever interacted, in the channel where they did."""
    return JobSpec(
        kind=kind,
        request=request,
        channel_id=interaction.channel_id or 0,
        guild_id=interaction.guild_id,
        mode=mode,
        parent_job_id=parent_job_id,
        image_index=image_index,
        account_created_at=interaction.user.created_at,
        locale=locale_of(interaction),
        display_prompt=display_prompt or request.prompt,
        parameters=parameters,
        private=private,
    )


async def read_attachment(attachment: discord.Attachment) -> bytes:
    """The attachment as a normalised PNG (raises `BadAttachment`)."""
    if attachment.size > MAX_BYTES:
        raise BadAttachment("attachment.too_large", limit=MAX_BYTES // (1024 * 1024))
    try:
        data = await attachment.read()
    except discord.HTTPException:
        raise BadAttachment("attachment.unreadable") from None
    return await asyncio.to_thread(normalise_image, data)


async def sync_premium(bot: SongeBot, interaction: discord.Interaction) -> None:
    """Discord premium: the user's active entitlement to a configured SKU sets their plan."""
    if not bot.settings.sku_plans:
        return
    plans = [
        bot.settings.sku_plans[e.sku_id]
        for e in interaction.entitlements
        if e.sku_id in bot.settings.sku_plans and not e.is_expired()
    ]
    await bot.store.sync_entitlement(interaction.user.id, plans[0] if plans else None)


async def submit_all(bot: SongeBot, interaction: discord.Interaction, specs: list[JobSpec]) -> None:
    """Submit each spec; answer with what was accepted, what it costs, and any fallback to relax.

    Results go privately (by direct message) when the user chose it and their plan allows it."""
    locale = locale_of(interaction)
    await sync_premium(bot, interaction)
    if (await bot.store.preferences(interaction.user.id)).private:
        if (await bot.store.account(interaction.user.id)).plan.private_allowed:
            specs = [dataclasses.replace(spec, private=True) for spec in specs]
    lines = []
    for spec in specs:
        accepted = await bot.jobs.submit(spec)
        reservation = accepted.reservation
        if reservation.fell_back_to_relax:
            lines.append(t("imagine.fell_back_to_relax", locale))
        lines.append(
            t(
                "imagine.accepted",
                locale,
                job=accepted.job_id[:8],
                mode=reservation.mode.value,
                estimate=format_seconds(reservation.reserved_seconds),
            )
        )
    await interaction.edit_original_response(content="\n".join(lines))
