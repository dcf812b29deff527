"""Every button under a result: U1-U4, V1-V4, re-roll, upscale, vary, zoom, pan, remix, cancel, delete."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.errors import NotAllowedHere, SongeError, reply_error
from bot.guards import check_button, check_words
from bot.i18n import t
from bot.interactions import locale_of, spec_for, submit_all
from bot.job_types import Envelope, StoredResult, new_job_id
from bot.views.buttons import single_view
from bot.views.modals import PromptModal, RegionModal, ZoomModal
from pipelines.operations import (
    VARY_STRONG_STRENGTH,
    VARY_SUBTLE_STRENGTH,
    make_square_canvas,
    pan_canvas,
    zoom_out_canvas,
)
from pipelines.types import Box, GenerationRequest
from quotas import JobRecord, JobStatus

if TYPE_CHECKING:
    from bot.app import SongeBot

log = logging.getLogger(__name__)

PANS = {"panl": "left", "panr": "right", "panu": "up", "pand": "down"}
IMAGELESS = frozenset({"reroll"})
"""Actions on the whole job (their buttons carry index 0)."""


class Results(commands.Cog):
    def __init__(self, bot: SongeBot) -> None:
        self.bot = bot

    async def handle_button(self, interaction: discord.Interaction, action: str, job_id: str, index: int) -> None:
        """Entry point of every `JobButton` click; errors go through the one error map."""
        try:
            await self._dispatch(interaction, action, job_id, index)
        except Exception as exc:  # every failure becomes an ephemeral answer
            await reply_error(interaction, exc)

    async def _dispatch(self, interaction: discord.Interaction, action: str, job_id: str, index: int) -> None:
        record = await self.bot.store.job(job_id)
        if record is None:
            raise SongeError("error.unknown_job")
        if action == "cancel":
            await self._cancel(interaction, record)
            return
        if action == "delete":
            await self._delete(interaction, record)
            return
        await check_button(self.bot, interaction, record.user_id)
        if record.status is not JobStatus.SUCCEEDED or record.result is None:
            raise SongeError("error.job_not_finished")
        result = StoredResult.loads(record.result)
        if action not in IMAGELESS and not 1 <= index <= len(result.files):
            raise SongeError("error.unknown_image")
        envelope = Envelope.loads(record.request)
        handlers: dict[str, Callable[[], Awaitable[None]]] = {
            "u": lambda: self._single(interaction, record, index),
            "reroll": lambda: self._reroll(interaction, record, envelope),
            "v": lambda: self._vary(interaction, record, envelope, index, VARY_STRONG_STRENGTH),
            "vstr": lambda: self._vary(interaction, record, envelope, index, VARY_STRONG_STRENGTH),
            "vsub": lambda: self._vary(interaction, record, envelope, index, VARY_SUBTLE_STRENGTH),
            "ups": lambda: self.upscale_image(interaction, record, envelope, index, creative=False),
            "upc": lambda: self.upscale_image(interaction, record, envelope, index, creative=True),
            "zoom2": lambda: self._zoom(interaction, record, envelope, index, 2.0),
            "zoom15": lambda: self._zoom(interaction, record, envelope, index, 1.5),
            "square": lambda: self._square(interaction, record, envelope, index),
            "zoomc": lambda: self._ask_zoom(interaction, record, envelope, index),
            "remix": lambda: self._ask_remix(interaction, record, envelope, index),
            "vreg": lambda: self._ask_region(interaction, record, envelope, index),
        }
        if action in PANS:
            await self._pan(interaction, record, envelope, index, PANS[action])
        elif action in handlers:
            await handlers[action]()
        else:
            raise SongeError("error.unknown_button")

    # -- free actions -----------------------------------------------------------------------

    async def _single(self, interaction: discord.Interaction, record: JobRecord, index: int) -> None:
        """U1-U4: the chosen image alone, at full size, with every single-image button."""
        data = await self._source(record, index)
        envelope = Envelope.loads(record.request)
        content = t(
            "result.single",
            locale_of(interaction),
            index=index,
            user=f"<@{interaction.user.id}>",
            prompt=discord.utils.escape_markdown(envelope.display_prompt)[:1500],
        )
        await interaction.response.send_message(
            content,
            file=discord.File(io.BytesIO(data), filename=f"songe_{record.job_id[:12]}_{index}.png"),
            view=single_view(record.job_id, index),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def _cancel(self, interaction: discord.Interaction, record: JobRecord) -> None:
        if interaction.user.id != record.user_id and not await self.bot.is_operator(interaction.user):
            raise NotAllowedHere("error.author_only")
        await interaction.response.defer(ephemeral=True, thinking=True)
        cancelled = await self.bot.jobs.cancel(record.job_id)
        key = "cancel.requested" if cancelled else "cancel.too_late"
        await interaction.edit_original_response(content=t(key, locale_of(interaction)))

    async def _delete(self, interaction: discord.Interaction, record: JobRecord) -> None:
        if interaction.user.id != record.user_id and not await self.bot.is_operator(interaction.user):
            raise NotAllowedHere("error.author_only")
        await interaction.response.defer(ephemeral=True, thinking=True)
        if interaction.message is not None:
            await interaction.message.delete()
        await interaction.edit_original_response(content=t("delete.done", locale_of(interaction)))

    # -- charged actions --------------------------------------------------------------------

    async def _source(self, record: JobRecord, index: int) -> bytes:
        return await asyncio.to_thread(self.bot.files.read, record.job_id, index - 1)

    async def _submit(
        self,
        interaction: discord.Interaction,
        record: JobRecord,
        envelope: Envelope,
        request: GenerationRequest,
        *,
        kind: str,
        index: int | None,
        display_prompt: str | None = None,
    ) -> None:
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=True, thinking=True)
        spec = spec_for(
            interaction,
            request,
            kind=kind,
            display_prompt=display_prompt or envelope.display_prompt,
            parameters=envelope.parameters,
            parent_job_id=record.job_id,
            image_index=index,
        )
        await submit_all(self.bot, interaction, [spec])

    async def _reroll(self, interaction: discord.Interaction, record: JobRecord, envelope: Envelope) -> None:
        request = self.bot.requests.reroll(envelope.request, job_id=new_job_id(), user_id=interaction.user.id)
        await self._submit(interaction, record, envelope, request, kind="reroll", index=None)

    async def _vary(
        self,
        interaction: discord.Interaction,
        record: JobRecord,
        envelope: Envelope,
        index: int,
        strength: float,
        prompt: str | None = None,
    ) -> None:
        if prompt is None and (await self.bot.store.preferences(interaction.user.id)).remix:
            await self._ask_remix(interaction, record, envelope, index)
            return
        source = await self._source(record, index)
        request = self.bot.requests.variation(
            envelope.request, source, job_id=new_job_id(), user_id=interaction.user.id, strength=strength, prompt=prompt
        )
        kind = "remix" if prompt is not None else "vary"
        await self._submit(interaction, record, envelope, request, kind=kind, index=index, display_prompt=prompt)

    async def upscale_image(
        self, interaction: discord.Interaction, record: JobRecord, envelope: Envelope, index: int, *, creative: bool
    ) -> None:
        source = await self._source(record, index)
        parent = _sized(envelope.request, record)
        request = self.bot.requests.upscale(
            parent, source, job_id=new_job_id(), user_id=interaction.user.id, creative=creative
        )
        await self._submit(interaction, record, envelope, request, kind="upscale", index=index)

    async def _outpaint(
        self,
        interaction: discord.Interaction,
        record: JobRecord,
        envelope: Envelope,
        index: int,
        canvas: tuple[int, int, Box],
        kind: str,
        prompt: str | None = None,
    ) -> None:
        source = await self._source(record, index)
        width, height, placement = canvas
        request = self.bot.requests.outpaint(
            envelope.request,
            source,
            job_id=new_job_id(),
            user_id=interaction.user.id,
            canvas=(width, height),
            placement=placement,
            prompt=prompt,
        )
        await self._submit(interaction, record, envelope, request, kind=kind, index=index, display_prompt=prompt)

    async def _zoom(
        self,
        interaction: discord.Interaction,
        record: JobRecord,
        envelope: Envelope,
        index: int,
        factor: float,
        prompt: str | None = None,
    ) -> None:
        parent = _sized(envelope.request, record)
        canvas = zoom_out_canvas(parent.width, parent.height, factor, **self._canvas_limits())
        await self._outpaint(interaction, record, envelope, index, canvas, "zoom", prompt)

    async def _square(
        self, interaction: discord.Interaction, record: JobRecord, envelope: Envelope, index: int
    ) -> None:
        parent = _sized(envelope.request, record)
        canvas = make_square_canvas(parent.width, parent.height, **self._canvas_limits())
        await self._outpaint(interaction, record, envelope, index, canvas, "square")

    async def _pan(
        self, interaction: discord.Interaction, record: JobRecord, envelope: Envelope, index: int, direction: str
    ) -> None:
        parent = _sized(envelope.request, record)
        canvas = pan_canvas(parent.width, parent.height, direction, **self._canvas_limits())
        await self._outpaint(interaction, record, envelope, index, canvas, "pan")

    def _canvas_limits(self) -> dict[str, int]:
        """Outpainting keeps the model's pixel budget: the source shrinks inside the larger view."""
        profile = self.bot.profile
        budget = max(profile.base_resolution**2, 1)
        return {"multiple": profile.multiple, "max_pixels": budget}

    # -- modals -----------------------------------------------------------------------------

    async def _ask_remix(
        self, interaction: discord.Interaction, record: JobRecord, envelope: Envelope, index: int
    ) -> None:
        async def done(modal_interaction: discord.Interaction, prompt: str) -> None:
            check_words(self.bot, prompt)
            await self._vary(modal_interaction, record, envelope, index, VARY_STRONG_STRENGTH, prompt=prompt)

        await interaction.response.send_modal(PromptModal(locale_of(interaction), envelope.request.prompt, done, self))

    async def _ask_zoom(
        self, interaction: discord.Interaction, record: JobRecord, envelope: Envelope, index: int
    ) -> None:
        async def done(modal_interaction: discord.Interaction, prompt: str, factor: float) -> None:
            check_words(self.bot, prompt)
            await self._zoom(modal_interaction, record, envelope, index, factor, prompt=prompt)

        await interaction.response.send_modal(ZoomModal(locale_of(interaction), envelope.request.prompt, done, self))

    async def _ask_region(
        self, interaction: discord.Interaction, record: JobRecord, envelope: Envelope, index: int
    ) -> None:
        parent = _sized(envelope.request, record)

        async def done(
            modal_interaction: discord.Interaction, prompt: str, box: tuple[float, float, float, float]
        ) -> None:
            check_words(self.bot, prompt)
            left, top, right, bottom = box
            region = Box(
                int(parent.width * left),
                int(parent.height * top),
                int(parent.width * right),
                int(parent.height * bottom),
            )
            source = await self._source(record, index)
            request = self.bot.requests.inpaint(
                parent, source, job_id=new_job_id(), user_id=modal_interaction.user.id, region=region, prompt=prompt
            )
            await self._submit(
                modal_interaction, record, envelope, request, kind="region", index=index, display_prompt=prompt
            )

        await interaction.response.send_modal(RegionModal(locale_of(interaction), envelope.request.prompt, done, self))

    async def modal_error(self, interaction: discord.Interaction, exc: BaseException) -> None:
        await reply_error(interaction, exc)


def _sized(request: GenerationRequest, record: JobRecord) -> GenerationRequest:
    """The parent request with the size its images really have (an upscale doubled it)."""
    if record.result is None:
        return request
    result = StoredResult.loads(record.result)
    return dataclasses.replace(request, width=result.width, height=result.height)


async def setup(bot: SongeBot) -> None:
    await bot.add_cog(Results(bot))
