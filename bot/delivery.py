"""The Discord presenter of jobs: progress messages, results (with DM fallback) and notices."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import t
from bot.job_types import DeliveryError, Job, ProgressState, Running, StoredResult, Waiting
from bot.render import blur_png, compose_grid, format_seconds, progress_bar
from bot.views.buttons import CUSTOM_ID, grid_view, progress_view, single_view
from pipelines.images import fit_attachment
from pipelines.types import FailureKind

if TYPE_CHECKING:
    from bot.app import SongeBot

log = logging.getLogger(__name__)

RESULT_SEARCH = 100
"""Messages after a job's progress message searched for its result after a restart."""


def headline(job: Job) -> str:
    """`**a red fox --ar 3:2 --seed 7** — @author (fast)`."""
    envelope = job.envelope
    text = envelope.display_prompt.strip()
    if envelope.parameters:
        text = f"{text} {envelope.parameters}"
    text = discord.utils.escape_markdown(text)[:1500]
    return f"**{text}** — <@{job.user_id}> ({job.record.mode.value})"


def progress_text(job: Job, state: ProgressState) -> str:
    locale = job.envelope.locale
    if isinstance(state, Waiting):
        if state.position > 0:
            status = t(
                "progress.waiting_position",
                locale,
                position=state.position,
                total=state.total,
                eta=format_seconds(state.eta_seconds),
            )
        else:
            status = t("progress.waiting", locale)
    else:
        status = t("progress.running", locale, bar=progress_bar(state.percent))
    return f"{headline(job)}\n{status}"


class DiscordPresenter:
    """Implements `bot.jobs.Presenter` with discord.py."""

    def __init__(self, bot: SongeBot) -> None:
        self.bot = bot

    def _channel(self, job: Job) -> discord.PartialMessageable:
        return self.bot.get_partial_messageable(job.record.channel_id or 0)

    def _mentions(self, job: Job) -> discord.AllowedMentions:
        return discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)])

    async def post_progress(self, job: Job, state: ProgressState) -> int | None:
        if job.envelope.private or not job.record.channel_id:
            return None
        try:
            message = await self._channel(job).send(
                progress_text(job, state),
                view=progress_view(job.job_id),
                nonce=f"p{job.job_id[:24]}",  # a restart that posts it again gets the first one back
                allowed_mentions=self._mentions(job),
            )
        except (discord.NotFound, discord.Forbidden) as exc:
            raise DeliveryError(str(exc)) from exc
        return message.id

    async def edit_progress(self, job: Job, state: ProgressState) -> None:
        if job.record.message_id is None:
            return
        message = self._channel(job).get_partial_message(job.record.message_id)
        kwargs: dict[str, Any] = {"content": progress_text(job, state)}
        if isinstance(state, Running) and state.preview:
            kwargs["attachments"] = [discord.File(io.BytesIO(state.preview), filename="preview.jpg")]
        try:
            await message.edit(**kwargs)
        except discord.NotFound:
            log.info("job=%s progress message is gone", job.job_id)

    async def deliver(self, job: Job, result: StoredResult, images: list[bytes]) -> int:
        blur = await self._blur_flags(job, result)
        data, extension = await asyncio.to_thread(_attachment, images, blur)
        spoiler = any(result.nsfw)
        filename = f"songe_{job.job_id[:12]}.{extension}"
        view = single_view(job.job_id, 1) if len(images) == 1 else grid_view(job.job_id)
        seed = f" --seed {job.envelope.request.seed}" if "--seed" not in job.envelope.parameters else ""
        locale = job.envelope.locale
        content = f"{headline(job)}{seed}\n" + t(
            "result.footer",
            locale,
            gpu=format_seconds(result.gpu_seconds),
            charged=format_seconds(job.record.charged_seconds),
        )
        if result.truncated:
            content += "\n" + t("result.truncated", locale)
        file = discord.File(io.BytesIO(data), filename=filename, spoiler=spoiler)
        nonce = job.job_id[:25]
        message: discord.Message | None = None
        if not job.envelope.private and job.record.channel_id:
            try:
                message = await self._channel(job).send(
                    content, file=file, view=view, nonce=nonce, allowed_mentions=self._mentions(job)
                )
            except (discord.NotFound, discord.Forbidden):
                log.info("job=%s channel unreachable, delivering by direct message", job.job_id)
                file = discord.File(io.BytesIO(data), filename=filename, spoiler=spoiler)
            except discord.HTTPException as exc:  # Discord's own trouble (5xx after retries): try again later
                raise DeliveryError(f"Discord refused the result: {exc}") from exc
        if message is None:
            message = await self._direct(job, content, file=file, view=view, nonce=nonce)
        await self._delete_progress(job)
        return message.id

    async def posted_result(self, job: Job) -> int | None:
        # A result goes after its progress message in the job's channel: look there (this needs Read Message
        # History; without it Discord shows no messages and only the nonce guards against a second post).
        if job.envelope.private or not job.record.channel_id or job.record.message_id is None:
            return None
        me = self.bot.user.id if self.bot.user else None
        after = discord.Object(job.record.message_id)
        try:
            async for message in self._channel(job).history(after=after, limit=RESULT_SEARCH, oldest_first=True):
                if message.author.id == me and message.attachments and job.job_id in _job_ids(message.components):
                    await self._delete_progress(job)
                    return message.id
        except discord.HTTPException as exc:
            log.info("job=%s could not look for an earlier post of its result: %s", job.job_id, exc)
        return None

    async def _direct(self, job: Job, content: str, **kwargs: Any) -> discord.Message:
        try:
            user = self.bot.get_user(job.user_id) or await self.bot.fetch_user(job.user_id)
            return await user.send(content, **kwargs)
        except discord.HTTPException as exc:
            raise DeliveryError(f"neither channel nor direct message reachable: {exc}") from exc

    async def _delete_progress(self, job: Job) -> None:
        if job.record.message_id is None:
            return
        try:
            await self._channel(job).get_partial_message(job.record.message_id).delete()
        except discord.HTTPException:
            pass

    async def _blur_flags(self, job: Job, result: StoredResult) -> tuple[bool, ...]:
        """Flagged images are blurred unless the channel is age-restricted and its server allows it."""
        if not any(result.nsfw):
            return ()
        channel = self.bot.get_channel(job.record.channel_id or 0)
        is_nsfw = bool(channel is not None and getattr(channel, "is_nsfw", lambda: False)())
        if is_nsfw and job.record.guild_id:
            policy = await self.bot.store.guild_policy(job.record.guild_id)
            if policy.nsfw_in_age_restricted:
                return ()
        return result.nsfw

    async def notify_ended(self, job: Job, *, refunded: float, kind: FailureKind | None, message: str) -> None:
        locale = job.envelope.locale
        if kind is None:
            status = t("ended.cancelled", locale, refunded=format_seconds(refunded))
        else:
            reason = t(f"failure.{kind.value}", locale, detail=message)
            status = t("ended.failed", locale, reason=reason, refunded=format_seconds(refunded))
        content = f"{headline(job)}\n{status}"
        if job.record.message_id is not None:
            try:
                await (
                    self._channel(job)
                    .get_partial_message(job.record.message_id)
                    .edit(content=content, view=None, attachments=[])
                )
                return
            except discord.HTTPException:
                log.info("job=%s progress message unreachable, telling the author directly", job.job_id)
        await self._direct(job, content)


def _job_ids(components: list[Any]) -> set[str]:
    """The job ids in a message's button ids (`songe:<action>:<job>:<index>`)."""
    found: set[str] = set()
    for component in components:
        if isinstance(component, discord.ActionRow):
            found |= _job_ids(component.children)
        elif isinstance(custom_id := getattr(component, "custom_id", None), str):
            if match := CUSTOM_ID.fullmatch(custom_id):
                found.add(match["job"])
    return found


def _attachment(images: list[bytes], blur: tuple[bool, ...]) -> tuple[bytes, str]:
    """The grid (or the single image) as one attachment under Discord's size limit."""
    if len(images) == 1:
        data = blur_png(images[0]) if blur and blur[0] else images[0]
    else:
        data = compose_grid(images, blur=blur)
    return fit_attachment(data)
