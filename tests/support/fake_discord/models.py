"""The fake Discord world: users, guilds, roles, channels, messages and attachments, and their JSON payloads.

Every object here is plain in-memory state owned by one :class:`~tests.support.fake_discord.FakeDiscord`.
Each knows how to render itself as the payload Discord would send for it (``payload()``).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits used by the fake (the full table lives in discord.py's ``Permissions``).
ADMINISTRATOR = 1 << 3
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
ALL_PERMISSIONS = (1 << 53) - 1
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | EMBED_LINKS | ATTACH_FILES | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS | USE_APPLICATION_COMMANDS
)

# Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7

# Channel types.
GUILD_TEXT = 0
DM = 1


def utcnow() -> dt.datetime:
    """Aware UTC now."""
    return dt.datetime.now(dt.timezone.utc)


def iso(when: dt.datetime | None) -> str | None:
    """ISO-8601 text as Discord writes timestamps."""
    return None if when is None else when.isoformat()


class Snowflakes:
    """Increasing, unique Discord snowflakes; ``next(at)`` encodes ``at`` so ``created_at`` round-trips."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def next(self, at: dt.datetime | None = None) -> int:
        """A fresh snowflake whose timestamp is ``at`` (now by default)."""
        when = at or utcnow()
        millis = int(when.timestamp() * 1000) - DISCORD_EPOCH_MS
        return (max(millis, 0) << 22) | (next(self._counter) & 0x3FFFFF)


def walk_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every component of a message or modal, nested ones included, depth first."""
    found: list[dict[str, Any]] = []
    stack = list(reversed(components))
    while stack:
        comp = stack.pop()
        found.append(comp)
        children = list(comp.get("components", []))
        children += [comp[key] for key in ("accessory", "component") if key in comp]
        stack.extend(reversed(children))
    return found


@dataclass(eq=False)
class FakeUser:
    """A Discord account: a test user, an operator, or the bot itself."""

    id: int
    name: str
    locale: str = "en-US"
    bot: bool = False
    global_name: str | None = None
    permissions: int | None = None  # extra guild permissions granted through the user's own role
    dms_open: bool = True  # False: DMs to this user fail with 50007 like a user who blocks DMs

    @property
    def mention(self) -> str:
        """``<@id>``."""
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        """The user object."""
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
        }


@dataclass(eq=False)
class FakeRole:
    """A guild role; the ``@everyone`` role has the guild's id."""

    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0

    def payload(self) -> dict[str, Any]:
        """The role object."""
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeMember:
    """A user's membership in one guild."""

    user: FakeUser
    guild_id: int
    role_ids: list[int] = field(default_factory=list)
    joined_at: dt.datetime = field(default_factory=utcnow)
    nick: str | None = None

    def payload(self, *, permissions: int | None = None, with_user: bool = True) -> dict[str, Any]:
        """The guild member object; ``permissions`` is added as interactions carry it."""
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.role_ids],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass(eq=False)
class FakeChannel:
    """A guild text channel, or a DM channel (``type == DM``, ``recipient`` set, ``guild_id`` None)."""

    id: int
    name: str
    guild_id: int | None = None
    type: int = GUILD_TEXT
    nsfw: bool = False
    position: int = 0
    topic: str | None = None
    recipient: FakeUser | None = None
    bot_permissions: int | None = None  # overrides the bot's guild permissions in this channel
    deleted: bool = False

    @property
    def is_dm(self) -> bool:
        """Whether this is a DM channel."""
        return self.type == DM

    def payload(self) -> dict[str, Any]:
        """The channel object."""
        if self.is_dm:
            assert self.recipient is not None
            return {"id": str(self.id), "type": DM, "last_message_id": None, "flags": 0,
                    "recipients": [self.recipient.payload()]}
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "nsfw": self.nsfw,
            "topic": self.topic,
            "parent_id": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeGuild:
    """A guild with its roles, channels and members."""

    id: int
    name: str
    owner_id: int
    locale: str = "en-US"
    joined_at: dt.datetime = field(default_factory=utcnow)
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)

    def permissions_of(self, user_id: int) -> int:
        """The member's guild permissions: ``@everyone`` plus its roles; everything for admins and the owner."""
        member = self.members.get(user_id)
        if member is None:
            return 0
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.roles[self.id].permissions
        for role_id in member.role_ids:
            role = self.roles.get(role_id)
            value |= role.permissions if role else 0
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def payload(self) -> dict[str, Any]:
        """The full GUILD_CREATE object."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "banner": None,
            "owner_id": str(self.owner_id),
            "preferred_locale": self.locale,
            "features": [],
            "roles": [r.payload() for r in self.roles.values()],
            "channels": [c.payload() for c in self.channels.values() if not c.deleted],
            "members": [m.payload() for m in self.members.values()],
            "member_count": len(self.members),
            "large": False,
            "unavailable": False,
            "joined_at": iso(self.joined_at),
            "emojis": [],
            "stickers": [],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "system_channel_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
        }


@dataclass(eq=False)
class FakeAttachment:
    """An uploaded file, its bytes kept and served from the fake CDN at ``url``."""

    id: int
    filename: str
    data: bytes = field(repr=False)
    content_type: str
    url: str
    width: int | None = None
    height: int | None = None
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        """Length in bytes."""
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        """The attachment object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
            "ephemeral": self.ephemeral,
            "flags": 0,
        }
        if self.description is not None:
            data["description"] = self.description
        return data


@dataclass(frozen=True)
class MessageVersion:
    """One earlier state of an edited message."""

    content: str
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    attachments: list[FakeAttachment]
    flags: int
    at: dt.datetime


@dataclass(eq=False)
class FakeMessage:
    """A message as the fake holds it; ``edits`` lists its earlier versions, oldest first."""

    id: int
    channel: FakeChannel
    author: FakeUser
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    nonce: str | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None
    created_at: dt.datetime = field(default_factory=utcnow)
    edited_at: dt.datetime | None = None
    deleted: bool = False
    edits: list[MessageVersion] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"<FakeMessage id={self.id} channel={self.channel.name!r} author={self.author.name!r} "
                f"content={self.content[:40]!r} flags={self.flags} edits={len(self.edits)} deleted={self.deleted}>")

    @property
    def ephemeral(self) -> bool:
        """Whether only the interaction's user sees it."""
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Whether it is still a deferred "thinking..." placeholder."""
        return bool(self.flags & LOADING)

    def walk_components(self) -> list[dict[str, Any]]:
        """Every component, nested ones included, depth first."""
        return walk_components(self.components)

    @property
    def custom_ids(self) -> list[str]:
        """The custom ids of all interactive components, in order."""
        return [c["custom_id"] for c in self.walk_components() if "custom_id" in c]

    @property
    def labels(self) -> list[str]:
        """The labels of all buttons, in order."""
        return [c["label"] for c in self.walk_components() if c.get("type") == 2 and "label" in c]

    def component(self, custom_id: str) -> dict[str, Any]:
        """The component with ``custom_id``; KeyError naming the ones present otherwise."""
        for comp in self.walk_components():
            if comp.get("custom_id") == custom_id:
                return comp
        raise KeyError(f"no component {custom_id!r} on message {self.id}; has {self.custom_ids}")

    def snapshot(self) -> MessageVersion:
        """The current state, for the edit history."""
        return MessageVersion(
            content=self.content,
            embeds=copy.deepcopy(self.embeds),
            components=copy.deepcopy(self.components),
            attachments=list(self.attachments),
            flags=self.flags,
            at=self.edited_at or self.created_at,
        )

    def payload(self) -> dict[str, Any]:
        """The message object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel.id),
            "type": self.type,
            "author": self.author.payload(),
            "content": self.content,
            "timestamp": iso(self.created_at),
            "edited_timestamp": iso(self.edited_at),
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [a.payload() for a in self.attachments],
            "embeds": copy.deepcopy(self.embeds),
            "components": copy.deepcopy(self.components),
            "pinned": False,
            "flags": self.flags,
        }
        if self.channel.guild_id is not None:
            data["guild_id"] = str(self.channel.guild_id)
        optional = {
            "nonce": self.nonce,
            "webhook_id": None if self.webhook_id is None else str(self.webhook_id),
            "application_id": None if self.application_id is None else str(self.application_id),
            "interaction_metadata": self.interaction_metadata,
            "message_reference": self.reference,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        return data
