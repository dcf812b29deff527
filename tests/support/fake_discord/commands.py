"""Application commands: what the bot synced, and interaction options built from that schema."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .models import ALL_PERMISSIONS, Snowflakes
from .wire import invalid_form

CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, NUMBER = 3, 4, 5, 10
RESOLVED_TYPES = {6, 7, 8, 9, 11}  # user, channel, role, mentionable, attachment
_NAME = re.compile(r"[-_\w]{1,32}")

# Turns a value for a user/channel/role/mentionable/attachment option into the id sent in the option,
# recording the object in the interaction's ``resolved`` data as a side effect.
Resolver = Callable[[int, Any], str]


class CommandRegistry:
    """The commands synced globally and per guild, with stable ids across re-syncs."""

    def __init__(self, app_id: int, snowflakes: Snowflakes) -> None:
        self._app_id = app_id
        self._snowflakes = snowflakes
        self._scopes: dict[int | None, dict[tuple[str, int], dict[str, Any]]] = {}

    def overwrite(self, guild_id: int | None, payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Bulk overwrite (``PUT .../commands``): replace the scope's commands, keeping ids of unchanged names."""
        old = self._scopes.get(guild_id, {})
        new: dict[tuple[str, int], dict[str, Any]] = {}
        for index, payload in enumerate(payloads):
            command = self._normalise(guild_id, payload, f"{index}")
            key = (command["name"], command["type"])
            if key in new:
                raise invalid_form(f"{index}.name", "Application command names must be unique")
            if key in old:
                command["id"] = old[key]["id"]
            new[key] = command
        self._scopes[guild_id] = new
        return self.list(guild_id)

    def upsert(self, guild_id: int | None, payload: dict[str, Any]) -> dict[str, Any]:
        """Create or replace one command (``POST .../commands``)."""
        command = self._normalise(guild_id, payload, "")
        scope = self._scopes.setdefault(guild_id, {})
        key = (command["name"], command["type"])
        if key in scope:
            command["id"] = scope[key]["id"]
        scope[key] = command
        return copy.deepcopy(command)

    def delete(self, guild_id: int | None, command_id: int) -> bool:
        """Delete one command; False when unknown."""
        scope = self._scopes.get(guild_id, {})
        for key, command in list(scope.items()):
            if int(command["id"]) == command_id:
                del scope[key]
                return True
        return False

    def list(self, guild_id: int | None) -> list[dict[str, Any]]:
        """The scope's commands as Discord returns them."""
        return [copy.deepcopy(c) for c in self._scopes.get(guild_id, {}).values()]

    def find(self, name: str, kind: int, guild_id: int | None) -> dict[str, Any]:
        """The command a user would pick in ``guild_id``: the guild's own first, then the global one."""
        for scope in (guild_id, None) if guild_id is not None else (None,):
            command = self._scopes.get(scope, {}).get((name, kind))
            if command is not None:
                return command
        known = sorted({n for s in self._scopes.values() for (n, k) in s if k == kind})
        raise LookupError(f"command {name!r} (type {kind}) was not synced; synced: {known}")

    def _normalise(self, guild_id: int | None, payload: dict[str, Any], path: str) -> dict[str, Any]:
        kind = int(payload.get("type") or CHAT_INPUT)
        name = str(payload.get("name") or "")
        prefix = f"{path}." if path else ""
        if kind == CHAT_INPUT and (not _NAME.fullmatch(name) or name != name.lower()):
            raise invalid_form(f"{prefix}name", "Command name is invalid")
        description = str(payload.get("description") or "")
        if kind == CHAT_INPUT and not 1 <= len(description) <= 100:
            raise invalid_form(f"{prefix}description", "Must be between 1 and 100 in length.")
        command = copy.deepcopy(payload)
        command.update(
            id=str(self._snowflakes.next()),
            application_id=str(self._app_id),
            version=str(self._snowflakes.next()),
            type=kind,
            description=description,
        )
        command.setdefault("options", [])
        command.setdefault("default_member_permissions", None)
        command.setdefault("nsfw", False)
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        return command


def check_available(command: dict[str, Any], *, permissions: int | None, nsfw_channel: bool) -> None:
    """Raise PermissionError where Discord's client would not offer ``command`` to the user.

    ``permissions`` are the user's in the guild (None in a DM): ``default_member_permissions`` must be
    covered ("0": administrators only), ``contexts`` must allow the place, NSFW commands need an NSFW channel.
    """
    label = f"/{command['name']}"
    contexts = command.get("contexts")
    if permissions is None:
        if command.get("dm_permission") is False or (contexts is not None and 1 not in contexts):
            raise PermissionError(f"{label} is not available in DMs")
        return
    if contexts is not None and 0 not in contexts:
        raise PermissionError(f"{label} is not available in guilds")
    needed = command.get("default_member_permissions")
    if needed is not None and permissions != ALL_PERMISSIONS:  # administrators see every command
        bits = int(needed)
        if bits == 0 or permissions & bits != bits:
            raise PermissionError(f"{label} needs permissions {needed}; the user has {permissions}")
    if command.get("nsfw") and not nsfw_channel:
        raise PermissionError(f"{label} is age-restricted and the channel is not NSFW")


def build_options(
    command: dict[str, Any],
    path: Sequence[str],
    values: Mapping[str, Any],
    resolve: Resolver,
    *,
    focused: str | None = None,
) -> list[dict[str, Any]]:
    """The ``data.options`` a Discord client sends for ``/command *path`` filled with ``values``.

    Checks what Discord's client checks (known names, required options, choices, ranges); ``focused``
    marks the option being typed in an autocomplete request, whose value is sent as typed.
    """
    label = "/" + " ".join([command["name"], *path])
    schema: list[dict[str, Any]] = command.get("options") or []
    top: list[dict[str, Any]] = []
    options = top
    for name in path:
        sub = next((o for o in schema if o["name"] == name and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)), None)
        if sub is None:
            subs = [o["name"] for o in schema if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
            raise LookupError(f"{label}: no subcommand {name!r}; has {subs}")
        node: dict[str, Any] = {"type": sub["type"], "name": name, "options": []}
        options.append(node)
        options = node["options"]
        schema = sub.get("options") or []
    subs = [o["name"] for o in schema if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
    if subs:
        raise LookupError(f"{label} needs a subcommand: {subs}")
    by_name = {o["name"]: o for o in schema}
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is None:
            raise LookupError(f"{label}: no option {name!r}; has {sorted(by_name)}")
        if name == focused:
            options.append({"type": spec["type"], "name": name, "value": value, "focused": True})
        else:
            options.append({"type": spec["type"], "name": name, "value": _convert(label, spec, value, resolve)})
    missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
    if missing and focused is None:
        raise ValueError(f"{label}: required options missing: {missing}")
    return top


def _convert(label: str, spec: dict[str, Any], value: Any, resolve: Resolver) -> Any:
    kind, name = spec["type"], spec["name"]
    if kind in RESOLVED_TYPES:
        return resolve(kind, value)
    if kind == BOOLEAN:
        if not isinstance(value, bool):
            raise TypeError(f"{label}: option {name!r} takes a bool, got {value!r}")
        return value
    if kind == STRING:
        value = str(value)
        size = len(value)
        if not spec.get("min_length", 0) <= size <= spec.get("max_length", 6000):
            raise ValueError(f"{label}: option {name!r} length {size} outside the synced limits")
    elif kind in (INTEGER, NUMBER):
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind == INTEGER and value != int(value)):
            raise TypeError(f"{label}: option {name!r} takes a {'integer' if kind == INTEGER else 'number'}")
        value = int(value) if kind == INTEGER else float(value)
        low, high = spec.get("min_value"), spec.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{label}: option {name!r}={value} outside [{low}, {high}]")
    choices = spec.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ValueError(f"{label}: option {name!r}={value!r} is not one of the synced choices")
    return value
