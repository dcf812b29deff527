"""The fake's whole in-memory state, its message operations, and waiting on changes to it."""

from __future__ import annotations

import asyncio
import io
import logging
import mimetypes
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from .commands import CommandRegistry
from .messages import FakeAttachment, FakeMessage
from .models import (
    DM,
    EPHEMERAL,
    LOADING,
    FakeChannel,
    FakeEntitlement,
    FakeGuild,
    FakeUser,
    Snowflakes,
    utcnow,
)
from .records import Fault, RestCall
from .validation import IS_COMPONENTS_V2, check_message
from .wire import DiscordError, UploadedFile, invalid_form

if TYPE_CHECKING:
    from .interaction import FakeInteraction

log = logging.getLogger(__name__)

T = TypeVar("T")
SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
_CREATE_FLAGS = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
_EDIT_FLAGS = SUPPRESS_EMBEDS | IS_COMPONENTS_V2
_UNSAFE_FILENAME = re.compile(r"[^\w.-]")

# (event name, data, guild id or None for DMs and global events)
Emitter = Callable[[str, dict[str, Any], int | None], object]


class World:
    """Users, guilds, channels, messages, commands, interactions, entitlements, records and faults."""

    def __init__(self, *, app_id: int, bot: FakeUser, snowflakes: Snowflakes, attachment_size_limit: int) -> None:
        self.app_id = app_id
        self.bot = bot
        self.snowflakes = snowflakes
        self.attachment_size_limit = attachment_size_limit
        self.base_url = ""
        self.users: dict[int, FakeUser] = {bot.id: bot}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, FakeMessage] = {}
        self.attachments: dict[int, FakeAttachment] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.entitlements: list[FakeEntitlement] = []
        self.skus: list[dict[str, Any]] = []
        self.commands = CommandRegistry(app_id, snowflakes)
        self.calls: list[RestCall] = []
        self.unknown_calls: list[RestCall] = []
        self.faults: list[Fault] = []
        self.emit: Emitter = lambda event, data, guild_id: None
        self._changed = asyncio.Event()

    # -- change notification -------------------------------------------------------------------------------

    def changed(self) -> None:
        """Wake every :meth:`wait_until`; call after each mutation."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], T | None], *, timeout: float, what: str) -> T:
        """Return the first truthy ``predicate()``, re-checked on every change; TimeoutError naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"fake Discord: timed out after {timeout}s waiting for {what}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    # -- lookups ---------------------------------------------------------------------------------------------

    def channel(self, channel_id: int) -> FakeChannel:
        """A live channel; 404 Unknown Channel otherwise."""
        channel = self.channels.get(channel_id)
        if channel is None or channel.deleted:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def message(self, channel_id: int, message_id: int) -> FakeMessage:
        """A live message of that channel as channel routes see it (never an ephemeral one); 10008 otherwise
        (10003 when the channel itself was deleted)."""
        self.channel(channel_id)
        msg = self.messages.get(message_id)
        if msg is None or msg.deleted or msg.ephemeral or msg.channel.id != channel_id:
            raise DiscordError(404, 10008, "Unknown Message")
        return msg

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The bot's DM channel with ``user``, opened on first use."""
        for channel in self.channels.values():
            if channel.type == DM and channel.recipient is user:
                return channel
        channel = FakeChannel(id=self.snowflakes.next(), name=user.name, type=DM, recipient=user)
        self.channels[channel.id] = channel
        return channel

    def bot_permissions(self, channel: FakeChannel) -> int:
        """The bot's permissions in ``channel`` (DMs: what a DM allows)."""
        if channel.bot_permissions is not None:
            return channel.bot_permissions
        if channel.guild_id is None:
            return (1 << 53) - 1
        return self.guilds[channel.guild_id].permissions_of(self.bot.id)

    def visible_messages(self, channel: FakeChannel) -> list[FakeMessage]:
        """The channel's live, non-ephemeral messages, oldest first."""
        return sorted(
            (m for m in self.messages.values() if m.channel is channel and not m.deleted and not m.ephemeral),
            key=lambda m: m.id,
        )

    # -- messages --------------------------------------------------------------------------------------------

    def create_message(
        self,
        channel: FakeChannel,
        author: FakeUser,
        payload: dict[str, Any],
        files: list[UploadedFile],
        *,
        validate: bool = True,
        **extra: Any,
    ) -> FakeMessage:
        """Post a message from a REST/webhook payload; ``extra`` sets FakeMessage fields (flags are OR-ed)."""
        if validate:
            check_message(payload, creating=True, has_files=bool(files))
        flags = int(payload.get("flags") or 0) & _CREATE_FLAGS | int(extra.pop("flags", 0))
        msg = FakeMessage(id=self.snowflakes.next(), channel=channel, author=author, flags=flags, **extra)
        msg.nonce = None if payload.get("nonce") is None else str(payload["nonce"])
        msg.reference = payload.get("message_reference")
        if msg.reference:
            msg.type = 19
        self._apply(msg, payload, files)
        self.messages[msg.id] = msg
        if not msg.ephemeral:
            self.emit("MESSAGE_CREATE", msg.payload(), channel.guild_id)
        self.changed()
        return msg

    def edit_message(self, msg: FakeMessage, payload: dict[str, Any], files: list[UploadedFile]) -> FakeMessage:
        """Edit a message (content, embeds, components, attachments, some flags); keeps the old version."""
        check_message(payload, creating=False, has_files=bool(files))
        before = msg.snapshot()
        self._apply(msg, payload, files)
        msg.edits.append(before)
        if "flags" in payload:
            msg.flags = msg.flags & ~_EDIT_FLAGS | int(payload["flags"] or 0) & _EDIT_FLAGS
        msg.flags &= ~LOADING
        msg.edited_at = utcnow()
        if not msg.ephemeral:
            self.emit("MESSAGE_UPDATE", msg.payload(), msg.channel.guild_id)
        self.changed()
        return msg

    def delete_message(self, msg: FakeMessage) -> None:
        """Delete a message (later calls on it get 10008)."""
        msg.deleted = True
        if not msg.ephemeral:
            data = {"id": str(msg.id), "channel_id": str(msg.channel.id)}
            if msg.channel.guild_id is not None:
                data["guild_id"] = str(msg.channel.guild_id)
            self.emit("MESSAGE_DELETE", data, msg.channel.guild_id)
        self.changed()

    def _apply(self, msg: FakeMessage, payload: dict[str, Any], files: list[UploadedFile]) -> None:
        """Set the fields ``payload`` carries; attachments first, as the only step that can refuse."""
        if "attachments" in payload or files:
            msg.attachments = self._attachments(msg, payload.get("attachments"), files)
        if "content" in payload:
            msg.content = payload["content"] or ""
        if "embeds" in payload:
            msg.embeds = [{"type": "rich", **e} for e in payload["embeds"] or []]
        if "components" in payload:
            msg.components = list(payload["components"] or [])
        by_name = {a.filename: a for a in msg.attachments}
        for embed in msg.embeds:
            for key in ("image", "thumbnail"):
                url = (embed.get(key) or {}).get("url", "")
                if url.startswith("attachment://") and url[13:] in by_name:
                    found = by_name[url[13:]]
                    embed[key] = {
                        "url": found.url,
                        "proxy_url": found.url,
                        "width": found.width,
                        "height": found.height,
                    }

    def _attachments(
        self, msg: FakeMessage, entries: list[dict[str, Any]] | None, files: list[UploadedFile]
    ) -> list[FakeAttachment]:
        uploads = {f.index: f for f in files}
        current = {a.id: a for a in msg.attachments}
        result: list[FakeAttachment] = [] if entries is not None else list(msg.attachments)
        for position, entry in enumerate(entries or []):
            key = int(entry["id"])
            if key in current:
                result.append(current[key])
            elif key in uploads:
                upload = uploads.pop(key)
                result.append(
                    self.store_attachment(
                        upload,
                        msg.channel.id,
                        filename=entry.get("filename"),
                        description=entry.get("description"),
                        ephemeral=msg.ephemeral,
                    )
                )
            else:
                raise invalid_form(f"attachments.{position}.id", f"Unknown attachment {key}")
        result.extend(self.store_attachment(u, msg.channel.id, ephemeral=msg.ephemeral) for u in uploads.values())
        return result

    def store_attachment(
        self,
        upload: UploadedFile,
        channel_id: int,
        *,
        filename: str | None = None,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> FakeAttachment:
        """Keep an uploaded file and give it a CDN URL on this server."""
        if len(upload.data) > self.attachment_size_limit:
            raise DiscordError(413, 40005, "Request entity too large")
        name = _UNSAFE_FILENAME.sub("_", filename or upload.filename) or "file"
        attachment_id = self.snowflakes.next()
        folder = "ephemeral-attachments" if ephemeral else "attachments"
        guessed = mimetypes.guess_type(name)[0]
        width, height = _image_size(upload.data)
        attachment = FakeAttachment(
            id=attachment_id,
            filename=name,
            data=upload.data,
            content_type=guessed or upload.content_type,
            url=f"{self.base_url}/cdn/{folder}/{channel_id}/{attachment_id}/{quote(name)}",
            width=width,
            height=height,
            description=description,
            ephemeral=ephemeral,
        )
        self.attachments[attachment_id] = attachment
        return attachment


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    """Width and height when ``data`` is an image Pillow can read."""
    try:
        from PIL import Image
    except ImportError:
        return None, None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None, None
