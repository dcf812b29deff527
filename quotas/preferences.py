"""User preferences (`/settings`, `/prefer`) and server policies: plain rows that never touch quotas."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from quotas.base import StoreBase
from quotas.models import GuildPolicy, Mode, Preferences

_PREFERENCE_TYPES: dict[str, tuple[type, ...]] = {
    "mode": (Mode, str),
    "aspect": (str, type(None)),
    "stylize": (int, type(None)),
    "remix": (bool,),
    "private": (bool,),
    "suffix": (str,),
}
_POLICY_FLAGS = ("nsfw_in_age_restricted", "author_only_buttons")


def _checked(changes: dict[str, Any], types: dict[str, tuple[type, ...]], what: str) -> dict[str, object]:
    """`changes` as column values, refusing unknown names and wrong types."""
    columns: dict[str, object] = {}
    for name, value in changes.items():
        if name not in types:
            raise TypeError(f"unknown {what} {name!r}; known: {', '.join(sorted(types))}")
        if not isinstance(value, types[name]) or (bool not in types[name] and isinstance(value, bool)):
            raise TypeError(f"{what} {name} cannot be {value!r}")
        columns[name] = Mode(str(value)).value if name == "mode" else int(value) if isinstance(value, bool) else value
    return columns


def _upsert(conn: sqlite3.Connection, table: str, key: str, key_value: int, columns: dict[str, object]) -> None:
    names = list(columns)
    updates = ", ".join(f"{n} = excluded.{n}" for n in names) or f"{key} = excluded.{key}"
    conn.execute(
        f"INSERT INTO {table} ({', '.join([key, *names])}) VALUES ({', '.join('?' * (len(names) + 1))}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}",
        (key_value, *columns.values()),
    )


def _preferences(conn: sqlite3.Connection, user_id: int) -> Preferences:
    options = dict(conn.execute("SELECT name, value FROM options WHERE user_id = ? ORDER BY name", (user_id,)))
    row = conn.execute("SELECT * FROM preferences WHERE user_id = ?", (user_id,)).fetchone()
    if row is None:
        return Preferences(options=options)
    return Preferences(
        mode=Mode(row["mode"]),
        aspect=row["aspect"],
        stylize=row["stylize"],
        remix=bool(row["remix"]),
        private=bool(row["private"]),
        suffix=row["suffix"],
        options=options,
    )


def _policy(conn: sqlite3.Connection, guild_id: int) -> GuildPolicy:
    channels = frozenset(
        c for (c,) in conn.execute("SELECT channel_id FROM guild_channels WHERE guild_id = ?", (guild_id,))
    )
    row = conn.execute("SELECT * FROM guild_policies WHERE guild_id = ?", (guild_id,)).fetchone()
    if row is None:
        return GuildPolicy(guild_id=guild_id, allowed_channel_ids=channels)
    return GuildPolicy(
        guild_id=guild_id,
        allowed_channel_ids=channels,
        nsfw_in_age_restricted=bool(row["nsfw_in_age_restricted"]),
        author_only_buttons=bool(row["author_only_buttons"]),
    )


class PreferencesMixin(StoreBase):
    async def preferences(self, user_id: int) -> Preferences:
        return await self._db.read(lambda conn: _preferences(conn, user_id))

    async def update_preferences(self, user_id: int, **changes: Any) -> Preferences:
        """Change some of mode, aspect, stylize, remix, private, suffix; returns the result."""
        columns = _checked(changes, _PREFERENCE_TYPES, "preference")

        def work(conn: sqlite3.Connection) -> Preferences:
            _upsert(conn, "preferences", "user_id", user_id, columns)
            return _preferences(conn, user_id)

        return await self._db.write(work)

    async def set_mode(self, user_id: int, mode: Mode) -> None:
        """The user's default mode (`/fast`, `/relax`, `/turbo`)."""
        await self.update_preferences(user_id, mode=Mode(mode))

    async def set_option(self, user_id: int, name: str, value: str | None) -> None:
        """A `/prefer option` shortcut; None deletes it."""
        if not name.strip():
            raise ValueError("an option needs a name")

        def work(conn: sqlite3.Connection) -> None:
            if value is None:
                conn.execute("DELETE FROM options WHERE user_id = ? AND name = ?", (user_id, name))
            else:
                conn.execute(
                    "INSERT INTO options (user_id, name, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (user_id, name) DO UPDATE SET value = excluded.value",
                    (user_id, name, value),
                )

        await self._db.write(work)

    async def guild_policy(self, guild_id: int) -> GuildPolicy:
        return await self._db.read(lambda conn: _policy(conn, guild_id))

    async def update_guild_policy(self, guild_id: int, **changes: Any) -> GuildPolicy:
        """Change some of allowed_channel_ids (replaces the set; empty allows all), nsfw_in_age_restricted,
        author_only_buttons; returns the result."""
        channels: Iterable[int] | None = changes.pop("allowed_channel_ids", None)
        columns = _checked(changes, dict.fromkeys(_POLICY_FLAGS, (bool,)), "server setting")
        if channels is not None:
            channels = frozenset(channels)
            if not all(isinstance(c, int) and not isinstance(c, bool) for c in channels):
                raise TypeError(f"allowed_channel_ids must be channel ids, got {sorted(channels, key=str)!r}")

        def work(conn: sqlite3.Connection) -> GuildPolicy:
            _upsert(conn, "guild_policies", "guild_id", guild_id, columns)
            if channels is not None:
                conn.execute("DELETE FROM guild_channels WHERE guild_id = ?", (guild_id,))
                conn.executemany(
                    "INSERT INTO guild_channels (guild_id, channel_id) VALUES (?, ?)", [(guild_id, c) for c in channels]
                )
            return _policy(conn, guild_id)

        return await self._db.write(work)
