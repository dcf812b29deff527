"""The fake Discord world: users, guilds, roles, members and channels, and their JSON payloads.

Every object here is plain in-memory state owned by one :class:`~tests.support.fake_discord.FakeDiscord`.
Each knows how to render itself as the payload Discord would send for it (``payload()``).
"""

from __future__ import annotations

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
    VIEW_CHANNEL
    | SEND_MESSAGES
    | READ_MESSAGE_HISTORY
    | EMBED_LINKS
    | ATTACH_FILES
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
)

# Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7

# Channel types.
GUILD_TEXT = 0
DM = 1


def utcnow() -> dt.datetime:
    """Aware UTC now."""
    return dt.datetime.now(dt.UTC)


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
            return {
                "id": str(self.id),
                "type": DM,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.recipient.payload()],
            }
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
class FakeEntitlement:
    """What a user (or a guild) bought: ``type`` 8 is an application subscription."""

    id: int
    sku_id: int
    user_id: int | None = None
    guild_id: int | None = None
    type: int = 8
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    deleted: bool = False
    consumed: bool = False

    def active(self, now: dt.datetime) -> bool:
        """In force at ``now``: not deleted, consumed nor ended."""
        return not self.deleted and not self.consumed and (self.ends_at is None or self.ends_at > now)

    def belongs_to(self, user_id: int, guild_id: int | None) -> bool:
        """Granted to that user, or to that guild."""
        return self.user_id == user_id or (guild_id is not None and self.guild_id == guild_id)

    def payload(self, app_id: int) -> dict[str, Any]:
        """The entitlement object."""
        return {
            "id": str(self.id),
            "sku_id": str(self.sku_id),
            "application_id": str(app_id),
            "user_id": None if self.user_id is None else str(self.user_id),
            "guild_id": None if self.guild_id is None else str(self.guild_id),
            "type": self.type,
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "deleted": self.deleted,
            "consumed": self.consumed,
        }
