"""What a test user can do in the fake Discord: slash commands, autocomplete, context menus, clicks, modals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .commands import CHAT_INPUT, MESSAGE_COMMAND, USER_COMMAND, build_options, check_available
from .gateway import Gateway
from .interaction import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    FakeInteraction,
    Resolved,
    interaction_payload,
)
from .messages import FakeMessage, walk_components
from .models import FakeChannel, FakeUser
from .records import InteractionResponse
from .world import World

TEXT_INPUT, LABEL = 4, 18
SELECTS = {3: None, 5: 6, 6: 8, 7: 9, 8: 7}  # select type -> option type its values resolve like (None: strings)


class UserActions:
    """Mixed into :class:`FakeDiscord`: each method sends one INTERACTION_CREATE as a real client would."""

    world: World
    gateway: Gateway
    token_lifetime: float

    async def slash(
        self,
        user: FakeUser,
        channel: FakeChannel | None,
        command: str,
        /,
        *path: str,
        locale: str | None = None,
        options: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> FakeInteraction:
        """Run ``/command *path`` with options ``values`` (or ``options=`` for names that clash), as synced.

        ``channel`` None means the user's DM with the bot. Users, channels and roles are passed as the
        fake objects; attachments as bytes, ``(filename, bytes)``, a Path or a FakeAttachment.
        """
        channel = self._where(user, channel)
        schema = self._command(command, CHAT_INPUT, user, channel)
        resolved = Resolved(self.world, channel, user)
        data = self._command_data(schema, build_options(schema, path, {**(options or {}), **values}, resolved))
        if resolved.data:
            data["resolved"] = resolved.data
        itx = FakeInteraction(
            self.world, kind=APPLICATION_COMMAND, user=user, channel=channel, lifetime=self.token_lifetime, name=command
        )
        return self._send(itx, data, locale=locale)

    async def autocomplete(
        self,
        user: FakeUser,
        channel: FakeChannel | None,
        command: str,
        /,
        *path: str,
        focused: str,
        value: Any = "",
        locale: str | None = None,
        timeout: float = 5.0,
        options: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> list[dict[str, Any]]:
        """Type ``value`` into option ``focused`` of ``/command *path``; the choices the bot offers."""
        channel = self._where(user, channel)
        schema = self._command(command, CHAT_INPUT, user, channel)
        filled = {**(options or {}), **values, focused: value}
        resolved = Resolved(self.world, channel, user)
        data = self._command_data(schema, build_options(schema, path, filled, resolved, focused=focused))
        itx = FakeInteraction(
            self.world, kind=AUTOCOMPLETE, user=user, channel=channel, lifetime=self.token_lifetime, name=command
        )
        answer = await self._send(itx, data, locale=locale).response(timeout)
        if answer.type != InteractionResponse.AUTOCOMPLETE_RESULT:
            raise AssertionError(f"autocomplete of /{command} answered with type {answer.type}, not 8")
        return answer.choices

    async def context_menu(
        self,
        user: FakeUser,
        target: FakeMessage | FakeUser,
        name: str,
        /,
        *,
        channel: FakeChannel | None = None,
        locale: str | None = None,
    ) -> FakeInteraction:
        """Run the message (or user) context-menu command ``name`` on ``target``."""
        if isinstance(target, FakeMessage):
            kind, where = MESSAGE_COMMAND, target.channel
        else:
            kind, where = USER_COMMAND, self._where(user, channel)
        schema = self._command(name, kind, user, where)
        resolved = Resolved(self.world, where, user)
        target_id = resolved.add_message(target) if isinstance(target, FakeMessage) else resolved.add_user(target)
        data = self._command_data(schema, None) | {"target_id": target_id, "resolved": resolved.data}
        itx = FakeInteraction(
            self.world, kind=APPLICATION_COMMAND, user=user, channel=where, lifetime=self.token_lifetime, name=name
        )
        return self._send(itx, data, locale=locale)

    async def click(
        self,
        user: FakeUser,
        message: FakeMessage,
        custom_id: str,
        /,
        *,
        values: list[Any] | None = None,
        locale: str | None = None,
    ) -> FakeInteraction:
        """Press the button (or pick ``values`` in the select) ``custom_id`` on ``message``."""
        if message.deleted:
            raise LookupError(f"message {message.id} was deleted")
        component = message.component(custom_id)
        if component.get("disabled"):
            raise PermissionError(f"component {custom_id!r} is disabled; a user cannot use it")
        kind = int(component["type"])
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": kind}
        resolved = Resolved(self.world, message.channel, user)
        if kind in SELECTS:
            as_option = SELECTS[kind]
            data["values"] = [str(v) if as_option is None else resolved(as_option, v) for v in values or []]
            if resolved.data:
                data["resolved"] = resolved.data
        elif values is not None:
            raise TypeError(f"component {custom_id!r} is type {kind}, not a select: it takes no values")
        itx = FakeInteraction(
            self.world,
            kind=MESSAGE_COMPONENT,
            user=user,
            channel=message.channel,
            message=message,
            lifetime=self.token_lifetime,
        )
        return self._send(itx, data, locale=locale)

    async def submit_modal(
        self,
        user: FakeUser,
        source: FakeInteraction | FakeMessage,
        custom_id: str | None = None,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        locale: str | None = None,
    ) -> FakeInteraction:
        """Fill and submit a modal: the one the bot opened in answer to ``source`` (an interaction), or,
        for a message ``source``, a modal of plain text inputs named by ``values``.

        ``values`` maps each input's custom id to its text (a list for selects); unset inputs are sent empty.
        """
        values = dict(values or {})
        message = source.message if isinstance(source, FakeInteraction) else source
        if isinstance(source, FakeInteraction):
            modal = source.modal
            if modal is None:
                got = source.answered.type if source.answered else None
                raise LookupError(f"{source!r} was not answered with a modal (answer type {got})")
            if custom_id not in (None, modal["custom_id"]):
                raise LookupError(f"the modal opened is {modal['custom_id']!r}, not {custom_id!r}")
            custom_id, channel = modal["custom_id"], source.channel
            unknown = set(values) - {c.get("custom_id") for c in walk_components(modal.get("components", []))}
            if unknown:
                raise KeyError(f"modal {custom_id!r} has no inputs {sorted(unknown)}")
            components = [_fill(c, values) for c in modal.get("components", [])]
        else:
            if custom_id is None:
                raise TypeError("submit_modal on a message needs the modal's custom_id")
            channel = source.channel
            components = [
                {"type": 1, "components": [{"type": TEXT_INPUT, "custom_id": k, "value": str(v)}]}
                for k, v in values.items()
            ]
        itx = FakeInteraction(
            self.world, kind=MODAL_SUBMIT, user=user, channel=channel, message=message, lifetime=self.token_lifetime
        )
        return self._send(itx, {"custom_id": custom_id, "components": components}, locale=locale)

    async def say(self, user: FakeUser, channel: FakeChannel, content: str) -> FakeMessage:
        """``user`` posts a plain message in ``channel`` (MESSAGE_CREATE goes to the bot)."""
        return self.world.create_message(channel, user, {"content": content}, [])

    # -- helpers ------------------------------------------------------------------------------------------

    def _where(self, user: FakeUser, channel: FakeChannel | None) -> FakeChannel:
        if channel is None:
            return self.world.dm_channel(user)
        if channel.deleted:
            raise LookupError(f"channel {channel.name!r} was deleted")
        if channel.guild_id is not None and user.id not in self.world.guilds[channel.guild_id].members:
            raise LookupError(f"{user.name!r} is not a member of the guild of #{channel.name}")
        return channel

    def _command(self, name: str, kind: int, user: FakeUser, channel: FakeChannel) -> dict[str, Any]:
        """The synced command ``user`` would pick in ``channel``, if Discord offers it to them there."""
        command = self.world.commands.find(name, kind, channel.guild_id)
        guild = self.world.guilds.get(channel.guild_id or 0)
        permissions = None if guild is None else guild.permissions_of(user.id)
        check_available(command, permissions=permissions, nsfw_channel=channel.nsfw)
        return command

    @staticmethod
    def _command_data(schema: dict[str, Any], options: list[dict[str, Any]] | None) -> dict[str, Any]:
        data: dict[str, Any] = {"id": schema["id"], "name": schema["name"], "type": schema["type"]}
        if options is not None:
            data["options"] = options
        if "guild_id" in schema:
            data["guild_id"] = schema["guild_id"]
        return data

    def _send(self, itx: FakeInteraction, data: dict[str, Any], *, locale: str | None) -> FakeInteraction:
        payload = interaction_payload(self.world, itx, data, locale=locale)
        self.world.interactions[itx.id] = itx
        if not self.gateway.dispatch("INTERACTION_CREATE", payload, itx.channel.guild_id):
            raise RuntimeError("no gateway session takes this interaction: is the bot connected? (await wait_ready())")
        return itx


def _fill(component: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The submitted form of one modal component, taking its value out of ``values``."""
    kind = component["type"]
    extra = {"id": component["id"]} if "id" in component else {}
    if kind == 1:
        return {"type": 1, "components": [_fill(c, values) for c in component.get("components", [])]} | extra
    if kind == LABEL:
        return {"type": LABEL, "component": _fill(component["component"], values)} | extra
    custom_id = component.get("custom_id")
    if custom_id is None:
        return {"type": kind} | extra
    given = values.pop(custom_id, None)
    if kind == TEXT_INPUT:
        text = "" if given is None else str(given)
        if component.get("required", True) and not text:
            raise ValueError(f"modal input {custom_id!r} is required")
        if text and not component.get("min_length", 0) <= len(text) <= component.get("max_length", 4000):
            raise ValueError(f"modal input {custom_id!r}: length {len(text)} outside its limits")
        return {"type": kind, "custom_id": custom_id, "value": text} | extra
    picked = [] if given is None else [str(v) for v in (given if isinstance(given, list) else [given])]
    return {"type": kind, "custom_id": custom_id, "values": picked} | extra
