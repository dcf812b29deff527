"""Setting the scene: guilds, channels, roles, users, members and entitlements, and taking them away.

Mixed into :class:`~tests.support.fake_discord.FakeDiscord`. Changes made after the bot connected reach it
as gateway events (GUILD_CREATE, CHANNEL_CREATE, GUILD_MEMBER_ADD, ENTITLEMENT_CREATE...), as on Discord.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from .messages import FakeMessage
from .models import (
    EVERYONE_PERMISSIONS,
    FakeChannel,
    FakeEntitlement,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Snowflakes,
)
from .world import World


class WorldBuilder:
    """The ``add_*`` / ``delete_*`` half of the test-facing API."""

    world: World
    snowflakes: Snowflakes
    owner: FakeUser

    @property
    def app_id(self) -> int:
        """The application id (also the interaction webhook id)."""
        return self.world.app_id

    @property
    def bot(self) -> FakeUser:
        """The bot's own user."""
        return self.world.bot

    def _user(self, user_id: int, name: str, **fields: Any) -> FakeUser:
        user = self.world.users.get(user_id) or FakeUser(id=user_id, name=name, **fields)
        self.world.users[user.id] = user
        return user

    def add_guild(
        self,
        name: str = "Test",
        *,
        id: int | None = None,
        owner_id: int | None = None,
        locale: str = "en-US",
        bot_permissions: int = EVERYONE_PERMISSIONS,
    ) -> FakeGuild:
        """A guild the bot is in; the owner (the application's owner by default) and the bot are members.

        ``id`` picks the guild's snowflake, e.g. to place it on a shard: ``(id >> 22) % shard_count``.
        """
        guild = FakeGuild(id=id or self.snowflakes.next(), name=name, owner_id=owner_id or self.owner.id, locale=locale)
        guild.roles[guild.id] = FakeRole(
            id=guild.id, guild_id=guild.id, name="@everyone", permissions=EVERYONE_PERMISSIONS
        )
        bot_role = FakeRole(
            id=self.snowflakes.next(), guild_id=guild.id, name=self.bot.name, permissions=bot_permissions, position=1
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot.id] = FakeMember(user=self.bot, guild_id=guild.id, role_ids=[bot_role.id])
        self.world.guilds[guild.id] = guild
        owner = self._user(guild.owner_id, f"owner-{guild.owner_id}")
        guild.members[owner.id] = FakeMember(user=owner, guild_id=guild.id)
        self.world.emit("GUILD_CREATE", guild.payload(), guild.id)
        self.world.changed()
        return guild

    def add_channel(
        self,
        guild: FakeGuild,
        name: str = "general",
        *,
        nsfw: bool = False,
        topic: str | None = None,
        bot_permissions: int | None = None,
    ) -> FakeChannel:
        """A text channel; ``bot_permissions`` overrides the bot's permissions there."""
        channel = FakeChannel(
            id=self.snowflakes.next(),
            name=name,
            guild_id=guild.id,
            nsfw=nsfw,
            topic=topic,
            position=len(guild.channels),
            bot_permissions=bot_permissions,
        )
        guild.channels[channel.id] = channel
        self.world.channels[channel.id] = channel
        self.world.emit("CHANNEL_CREATE", channel.payload(), guild.id)
        self.world.changed()
        return channel

    def add_role(self, guild: FakeGuild, name: str, *, permissions: int = 0) -> FakeRole:
        """A role (``permissions`` a bit field; ``1 << 3`` is Administrator)."""
        role = FakeRole(
            id=self.snowflakes.next(), guild_id=guild.id, name=name, permissions=permissions, position=len(guild.roles)
        )
        guild.roles[role.id] = role
        self.world.emit("GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role.payload()}, guild.id)
        return role

    def add_user(
        self,
        name: str,
        *,
        locale: str = "en-US",
        created_at: dt.datetime | None = None,
        permissions: int | None = None,
        guilds: Iterable[FakeGuild] | None = None,
        roles: Iterable[FakeRole] = (),
        global_name: str | None = None,
        dms_open: bool = True,
    ) -> FakeUser:
        """A user (account created at ``created_at``) who joins ``guilds`` (default: every guild so far).

        ``permissions`` are granted through a role of their own in each guild; ``roles`` are added as given.
        """
        user = FakeUser(
            id=self.snowflakes.next(created_at),
            name=name,
            locale=locale,
            global_name=global_name,
            permissions=permissions,
            dms_open=dms_open,
        )
        self.world.users[user.id] = user
        for guild in self.world.guilds.values() if guilds is None else guilds:
            own = [r for r in roles if r.guild_id == guild.id]
            if permissions is not None:
                own.append(self.add_role(guild, f"{name}-permissions", permissions=permissions))
            self.add_member(guild, user, roles=own)
        return user

    def add_member(self, guild: FakeGuild, user: FakeUser, *, roles: Iterable[FakeRole] = ()) -> FakeMember:
        """Make ``user`` a member of ``guild`` with ``roles``."""
        member = FakeMember(user=user, guild_id=guild.id, role_ids=[r.id for r in roles])
        guild.members[user.id] = member
        self.world.emit("GUILD_MEMBER_ADD", member.payload() | {"guild_id": str(guild.id)}, guild.id)
        self.world.changed()
        return member

    def add_entitlement(
        self,
        user: FakeUser | None = None,
        *,
        sku_id: int,
        guild: FakeGuild | None = None,
        type: int = 8,
        starts_at: dt.datetime | None = None,
        ends_at: dt.datetime | None = None,
    ) -> FakeEntitlement:
        """An entitlement for a user or a guild: sent in their interactions, listed by REST, announced on the
        gateway (ENTITLEMENT_CREATE)."""
        ent = FakeEntitlement(
            id=self.snowflakes.next(), sku_id=sku_id, user_id=None if user is None else user.id,
            guild_id=None if guild is None else guild.id, type=type, starts_at=starts_at, ends_at=ends_at,
        )  # fmt: skip
        self.world.entitlements.append(ent)
        self.world.emit("ENTITLEMENT_CREATE", ent.payload(self.app_id), None)
        self.world.changed()
        return ent

    def end_entitlement(self, ent: FakeEntitlement) -> None:
        """Cancel an entitlement now (ENTITLEMENT_DELETE): it leaves interactions and REST listings."""
        ent.deleted = True
        self.world.emit("ENTITLEMENT_DELETE", ent.payload(self.app_id), None)
        self.world.changed()

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The bot's DM channel with ``user``."""
        return self.world.dm_channel(user)

    def delete_channel(self, channel: FakeChannel) -> None:
        """Delete a channel: the bot's later calls on it get 10003 Unknown Channel."""
        channel.deleted = True
        self.world.emit("CHANNEL_DELETE", channel.payload(), channel.guild_id)
        self.world.changed()

    def delete_message(self, message: FakeMessage) -> None:
        """Delete a message (as a moderator would): later calls on it get 10008 Unknown Message."""
        self.world.delete_message(message)
