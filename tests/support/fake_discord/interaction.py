"""One interaction a test sends (the handle tests hold) and the INTERACTION_CREATE payload around it."""

from __future__ import annotations

import pathlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from .messages import FakeAttachment, FakeMessage
from .models import FakeChannel, FakeRole, FakeUser, utcnow
from .records import InteractionResponse
from .wire import UploadedFile
from .world import World

APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5


class FakeInteraction:
    """An interaction sent to the bot, and everything the bot answered to it.

    ``await itx.response()`` waits for the callback; ``await itx.original()`` for the message it produced;
    ``await itx.followups(n)`` for followup messages. ``itx.expire()`` makes its token invalid, as after
    Discord's 15 minutes.
    """

    def __init__(
        self,
        world: World,
        *,
        kind: int,
        user: FakeUser,
        channel: FakeChannel,
        message: FakeMessage | None = None,
        lifetime: float,
        name: str | None = None,
    ) -> None:
        self.world = world
        self.id = world.snowflakes.next()
        self.token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        self.type = kind
        self.user = user
        self.channel = channel
        self.message = message  # the message a component sits on
        self.name = name  # command name for commands
        self.payload: dict[str, Any] = {}
        self.created_at = time.monotonic()
        self.dispatched_at: float | None = None  # when INTERACTION_CREATE went out on the gateway
        self.lifetime = lifetime
        self.callbacks: list[InteractionResponse] = []
        self.original_id: int | None = None
        self.followup_ids: list[int] = []
        self._expired = False

    def __repr__(self) -> str:
        return f"<FakeInteraction id={self.id} type={self.type} name={self.name!r} user={self.user.name!r}>"

    # -- token validity -------------------------------------------------------------------------------------

    def expire(self) -> None:
        """Invalidate the token now: later callbacks get 10062 and webhook calls 401 Invalid Webhook Token."""
        self._expired = True

    @property
    def expired(self) -> bool:
        """Whether the token no longer works (marked, or older than its lifetime)."""
        return self._expired or time.monotonic() - self.created_at > self.lifetime

    # -- what the bot did ----------------------------------------------------------------------------------

    @property
    def answered(self) -> InteractionResponse | None:
        """The callback, once the bot sent it."""
        return self.callbacks[0] if self.callbacks else None

    async def response(self, timeout: float = 5.0) -> InteractionResponse:
        """Wait for the bot's interaction callback (defer, message, modal, choices...)."""
        return await self.world.wait_until(lambda: self.answered, timeout=timeout, what=f"a response to {self!r}")

    async def original(
        self, timeout: float = 5.0, *, final: bool = True, where: Callable[[FakeMessage], bool] | None = None
    ) -> FakeMessage:
        """Wait for the original response message: with ``final``, until it is no longer a "thinking..."
        placeholder; with ``where``, until it matches (e.g. the last of several progress edits)."""

        def ready() -> FakeMessage | None:
            msg = self.world.messages.get(self.original_id) if self.original_id else None
            if msg is None or (final and msg.loading) or (where is not None and not where(msg)):
                return None
            return msg

        return await self.world.wait_until(ready, timeout=timeout, what=f"the original response of {self!r}")

    async def followups(self, count: int = 1, timeout: float = 5.0) -> list[FakeMessage]:
        """Wait until at least ``count`` followup messages exist; all of them, oldest first."""

        def enough() -> list[FakeMessage] | None:
            found = [self.world.messages[i] for i in self.followup_ids]
            return found if len(found) >= count else None

        if count <= 0:
            return [self.world.messages[i] for i in self.followup_ids]
        return await self.world.wait_until(enough, timeout=timeout, what=f"{count} followup(s) of {self!r}")

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot opened in answer (type 9 data), if any."""
        answer = self.answered
        return answer.data if answer is not None and answer.type == InteractionResponse.MODAL else None


def interaction_payload(
    world: World,
    itx: FakeInteraction,
    data: dict[str, Any],
    *,
    locale: str | None = None,
) -> dict[str, Any]:
    """The INTERACTION_CREATE payload for ``itx`` carrying ``data``; stores it on ``itx.payload``."""
    channel, user, now = itx.channel, itx.user, utcnow()
    channel_data = channel.payload()
    payload: dict[str, Any] = {
        "id": str(itx.id),
        "application_id": str(world.app_id),
        "type": itx.type,
        "token": itx.token,
        "version": 1,
        "data": data,
        "channel_id": str(channel.id),
        "channel": channel_data,
        "locale": locale or user.locale,
        "app_permissions": str(world.bot_permissions(channel)),
        "entitlements": [
            e.payload(world.app_id)
            for e in world.entitlements
            if e.belongs_to(user.id, channel.guild_id) and e.active(now)
        ],
        "attachment_size_limit": world.attachment_size_limit,
    }
    if channel.guild_id is not None:
        guild = world.guilds[channel.guild_id]
        permissions = guild.permissions_of(user.id)
        channel_data["permissions"] = str(permissions)
        payload.update(
            guild_id=str(guild.id),
            guild={"id": str(guild.id), "locale": guild.locale, "features": []},
            guild_locale=guild.locale,
            member=guild.members[user.id].payload(permissions=permissions),
            context=0,
            authorizing_integration_owners={"0": str(guild.id)},
        )
    else:
        payload.update(user=user.payload(), context=1, authorizing_integration_owners={"0": "0"})
    if itx.message is not None:
        payload["message"] = itx.message.payload()
    itx.payload = payload
    return payload


class Resolved:
    """Collects the ``data.resolved`` of an interaction while options are converted to ids."""

    def __init__(self, world: World, channel: FakeChannel, user: FakeUser) -> None:
        self.world = world
        self.channel = channel
        self.user = user
        self.data: dict[str, dict[str, Any]] = {}

    def __call__(self, kind: int, value: Any) -> str:
        """The option value (an id) for ``value``; records the object it names."""
        if kind in (6, 9) and isinstance(value, FakeUser):
            return self.add_user(value)
        if kind in (8, 9) and isinstance(value, FakeRole):
            self.data.setdefault("roles", {})[str(value.id)] = value.payload()
            return str(value.id)
        if kind == 7 and isinstance(value, FakeChannel):
            return self.add_channel(value)
        if kind == 11:
            return self.add_attachment(value)
        raise TypeError(f"option of type {kind} cannot take {value!r}")

    def add_user(self, user: FakeUser) -> str:
        key = str(user.id)
        self.data.setdefault("users", {})[key] = user.payload()
        guild = self.world.guilds.get(self.channel.guild_id or 0)
        if guild is not None and user.id in guild.members:
            member = guild.members[user.id].payload(permissions=guild.permissions_of(user.id), with_user=False)
            self.data.setdefault("members", {})[key] = member
        return key

    def add_channel(self, channel: FakeChannel) -> str:
        data = channel.payload()
        guild = self.world.guilds.get(channel.guild_id or 0)
        data["permissions"] = str(guild.permissions_of(self.user.id) if guild else 0)
        self.data.setdefault("channels", {})[str(channel.id)] = data
        return str(channel.id)

    def add_attachment(self, value: Any) -> str:
        """An attachment option: a FakeAttachment, a path, bytes, or ``(filename, bytes)``."""
        if not isinstance(value, FakeAttachment):
            if isinstance(value, pathlib.Path):
                filename, data = value.name, value.read_bytes()
            elif isinstance(value, bytes):
                filename, data = "upload.bin", value
            elif isinstance(value, tuple) and len(value) == 2:
                filename, data = value
            else:
                raise TypeError(f"attachment options take bytes, (name, bytes), a Path or a FakeAttachment: {value!r}")
            upload = UploadedFile(index=0, filename=filename, content_type="application/octet-stream", data=data)
            value = self.world.store_attachment(upload, self.channel.id, ephemeral=True)
        self.data.setdefault("attachments", {})[str(value.id)] = value.payload()
        return str(value.id)

    def add_message(self, message: FakeMessage) -> str:
        self.data.setdefault("messages", {})[str(message.id)] = message.payload()
        return str(message.id)
