"""Interaction callbacks and the interaction webhook (followups, ``@original``), as Discord serves them.

Discord quirks kept on purpose, because bots trip on them in production:

- the first followup after a deferral (type 5) does not create a message: it fills the "thinking..."
  placeholder, which keeps the deferral's ephemerality whatever flags the followup sends;
- for components, type 6 and 7 make ``@original`` the message the component is on;
- webhook calls before the interaction is acknowledged get 10015 Unknown Webhook, after expiry
  401 Invalid Webhook Token (50027); a second callback gets 40060.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from .interaction import APPLICATION_COMMAND, AUTOCOMPLETE, MESSAGE_COMPONENT, MODAL_SUBMIT, FakeInteraction
from .messages import FakeMessage
from .models import EPHEMERAL, LOADING
from .records import InteractionResponse
from .wire import BODY, Body, DiscordError, invalid_form, json_response, no_content, snowflake_param
from .world import World

log = logging.getLogger(__name__)

R = InteractionResponse
_ALLOWED = {  # interaction type -> callback types Discord accepts for it
    APPLICATION_COMMAND: {R.CHANNEL_MESSAGE, R.DEFERRED_CHANNEL_MESSAGE, R.MODAL, R.LAUNCH_ACTIVITY},
    MESSAGE_COMPONENT: {
        R.CHANNEL_MESSAGE,
        R.DEFERRED_CHANNEL_MESSAGE,
        R.DEFERRED_UPDATE_MESSAGE,
        R.UPDATE_MESSAGE,
        R.MODAL,
        R.LAUNCH_ACTIVITY,
    },
    AUTOCOMPLETE: {R.AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {R.CHANNEL_MESSAGE, R.DEFERRED_CHANNEL_MESSAGE, R.DEFERRED_UPDATE_MESSAGE, R.UPDATE_MESSAGE},
}


class InteractionWebhooks:
    """Route handlers for ``/interactions/{id}/{token}/callback`` and ``/webhooks/{app_id}/{token}...``."""

    def __init__(self, world: World, *, callback_deadline: float | None) -> None:
        self.world = world
        self.callback_deadline = callback_deadline

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp routes, relative to the API prefix."""
        msg = "/webhooks/{app_id}/{token}/messages/{message_id}"
        return [
            web.post("/interactions/{interaction_id}/{token}/callback", self.callback),
            web.post("/webhooks/{app_id}/{token}", self.followup),
            web.get(msg, self.get_message),
            web.patch(msg, self.edit_message),
            web.delete(msg, self.delete_message),
        ]

    # -- the callback --------------------------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.Response:
        """POST an interaction response."""
        itx = self.world.interactions.get(snowflake_param(request, "interaction_id"))
        if itx is None or itx.token != request.match_info["token"] or itx.expired or self._too_late(itx):
            raise DiscordError(404, 10062, "Unknown interaction")
        if itx.callbacks:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body: Body = request[BODY]
        payload = body.json or {}
        kind = int(payload.get("type", 0))
        if kind not in _ALLOWED[itx.type]:
            raise invalid_form("type", f"Callback type {kind} is not valid for interaction type {itx.type}")
        data = payload.get("data") or {}
        now = time.monotonic()
        elapsed = None if itx.dispatched_at is None else now - itx.dispatched_at
        message = self._apply(itx, kind, data, body)
        itx.callbacks.append(R(type=kind, data=data, at=now, elapsed=elapsed, files=body.files))
        self.world.changed()
        if "with_response" not in request.query:
            return no_content()
        return json_response(self._callback_result(itx, kind, message))

    def _too_late(self, itx: FakeInteraction) -> bool:
        return (
            self.callback_deadline is not None
            and itx.dispatched_at is not None
            and time.monotonic() - itx.dispatched_at > self.callback_deadline
        )

    def _apply(self, itx: FakeInteraction, kind: int, data: dict[str, Any], body: Body) -> FakeMessage | None:
        """Carry out a callback; the message it produced or touched."""
        if kind == R.CHANNEL_MESSAGE:
            msg = self._post(itx, data, body, flags=int(data.get("flags") or 0) & EPHEMERAL)
            itx.original_id = msg.id
            return msg
        if kind == R.DEFERRED_CHANNEL_MESSAGE:
            flags = LOADING | int(data.get("flags") or 0) & EPHEMERAL
            msg = self._post(itx, {}, Body(), flags=flags, validate=False)
            itx.original_id = msg.id
            return msg
        if kind in (R.DEFERRED_UPDATE_MESSAGE, R.UPDATE_MESSAGE):
            if itx.message is None:
                raise invalid_form("type", "This interaction has no message to update")
            if itx.message.deleted:
                raise DiscordError(404, 10008, "Unknown Message")
            itx.original_id = itx.message.id
            if kind == R.UPDATE_MESSAGE:
                self.world.edit_message(itx.message, data, body.files)
            return itx.message
        return None

    def _post(
        self,
        itx: FakeInteraction,
        data: dict[str, Any],
        body: Body,
        *,
        flags: int,
        validate: bool = True,
        followup: bool = False,
    ) -> FakeMessage:
        metadata: dict[str, Any] = {
            "id": str(itx.id),
            "type": itx.type,
            "user": itx.user.payload(),
            "authorizing_integration_owners": itx.payload.get("authorizing_integration_owners", {}),
        }
        if itx.message is not None:
            metadata["interacted_message_id"] = str(itx.message.id)
        if followup and itx.original_id is not None:
            metadata["original_response_message_id"] = str(itx.original_id)
        msg_type = 0
        if itx.type == APPLICATION_COMMAND and not followup:
            msg_type = 20 if "target_id" not in itx.payload.get("data", {}) else 23
        return self.world.create_message(
            itx.channel,
            self.world.bot,
            data,
            body.files,
            flags=flags,
            validate=validate,
            webhook_id=self.world.app_id,
            application_id=self.world.app_id,
            interaction_metadata=metadata,
            type=msg_type,
        )

    def _callback_result(self, itx: FakeInteraction, kind: int, message: FakeMessage | None) -> dict[str, Any]:
        interaction: dict[str, Any] = {"id": str(itx.id), "type": itx.type}
        resource: dict[str, Any] = {"type": kind}
        if message is not None:
            interaction.update(
                response_message_id=str(message.id),
                response_message_loading=message.loading,
                response_message_ephemeral=message.ephemeral,
            )
            resource["message"] = message.payload()
        return {"interaction": interaction, "resource": resource}

    # -- the webhook ---------------------------------------------------------------------------------------

    def _interaction(self, request: web.Request) -> FakeInteraction:
        if snowflake_param(request, "app_id") != self.world.app_id:
            raise DiscordError(404, 10015, "Unknown Webhook")
        token = request.match_info["token"]
        itx = next((i for i in self.world.interactions.values() if i.token == token), None)
        if itx is None or itx.expired:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        if not itx.callbacks:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return itx

    def _message_of(self, itx: FakeInteraction, request: web.Request) -> FakeMessage:
        raw = request.match_info["message_id"]
        message_id = itx.original_id if raw == "@original" else snowflake_param(request, "message_id")
        msg = self.world.messages.get(message_id or 0)
        if msg is None or msg.deleted or message_id not in (itx.original_id, *itx.followup_ids):
            raise DiscordError(404, 10008, "Unknown Message")
        return msg

    async def followup(self, request: web.Request) -> web.Response:
        """POST a followup message (``?wait=true`` returns it)."""
        itx = self._interaction(request)
        body: Body = request[BODY]
        data = body.json or {}
        original = self.world.messages.get(itx.original_id or 0)
        if original is not None and original.loading and not original.deleted and original.id not in itx.followup_ids:
            msg = self.world.edit_message(original, data, body.files)
        else:
            msg = self._post(itx, data, body, flags=int(data.get("flags") or 0) & EPHEMERAL, followup=True)
        itx.followup_ids.append(msg.id)
        self.world.changed()
        wait = request.query.get("wait", "false").lower() in ("true", "1")
        return json_response(msg.payload()) if wait else no_content()

    async def get_message(self, request: web.Request) -> web.Response:
        """GET ``@original`` or a followup."""
        return json_response(self._message_of(self._interaction(request), request).payload())

    async def edit_message(self, request: web.Request) -> web.Response:
        """PATCH ``@original`` or a followup."""
        msg = self._message_of(self._interaction(request), request)
        body: Body = request[BODY]
        return json_response(self.world.edit_message(msg, body.json or {}, body.files).payload())

    async def delete_message(self, request: web.Request) -> web.Response:
        """DELETE ``@original`` or a followup."""
        self.world.delete_message(self._message_of(self._interaction(request), request))
        return no_content()
