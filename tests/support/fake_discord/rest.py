"""The REST API the bot uses (users, application, commands, channels, messages, DMs, entitlements) and the CDN."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .models import ATTACH_FILES, EPHEMERAL, READ_MESSAGE_HISTORY, SEND_MESSAGES, VIEW_CHANNEL, FakeUser, utcnow
from .wire import BODY, Body, DiscordError, json_response, no_content, snowflake_param
from .world import World

MANAGE_MESSAGES = 1 << 13
NONCE_WINDOW = dt.timedelta(minutes=5)


class RestApi:
    """Route handlers for the bot-authenticated REST API and the attachment CDN."""

    def __init__(
        self, world: World, *, owner: FakeUser, team: list[FakeUser], shards: int, gateway_url: Callable[[], str]
    ) -> None:
        self.world = world
        self.owner = owner
        self.team = team
        self._team_id = world.snowflakes.next()
        self.shards = shards
        self._gateway_url = gateway_url  # the ws URL, known once the server listens

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp routes, relative to the API prefix."""
        app = "/applications/{app_id}"
        commands = [f"{app}/commands", f"{app}/guilds/{{guild_id}}/commands"]
        message = "/channels/{channel_id}/messages/{message_id}"
        routes = [
            web.get("/gateway", self.gateway),
            web.get("/gateway/bot", self.gateway_bot),
            web.get("/users/@me", self.me),
            web.get("/users/{user_id}", self.user),
            web.post("/users/@me/channels", self.open_dm),
            web.get("/oauth2/applications/@me", self.application),
            web.get("/applications/@me", self.application),
            web.get(f"{app}/entitlements", self.entitlements),
            web.post(f"{app}/entitlements/{{entitlement_id}}/consume", self.consume_entitlement),
            web.get(f"{app}/skus", self.skus),
            web.get("/channels/{channel_id}", self.channel),
            web.post("/channels/{channel_id}/typing", self.typing),
            web.get("/channels/{channel_id}/messages", self.history),
            web.post("/channels/{channel_id}/messages", self.create_message),
            web.get(message, self.get_message),
            web.patch(message, self.edit_message),
            web.delete(message, self.delete_message),
            web.put(message + "/reactions/{emoji}/@me", self.react),
            web.delete(message + "/reactions/{emoji}/@me", self.react),
            web.get("/guilds/{guild_id}", self.guild),
            web.get("/guilds/{guild_id}/members/{user_id}", self.member),
        ]
        for path in commands:
            routes += [
                web.get(path, self.list_commands),
                web.put(path, self.overwrite_commands),
                web.post(path, self.upsert_command),
                web.delete(path + "/{command_id}", self.delete_command),
            ]
        return routes

    # -- gateway, users, application -------------------------------------------------------------------------

    async def gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self._gateway_url()})

    async def gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return json_response({"url": self._gateway_url(), "shards": self.shards, "session_start_limit": limit})

    async def me(self, request: web.Request) -> web.Response:
        return json_response(self.world.bot.payload() | {"verified": True, "mfa_enabled": False, "flags": 0})

    async def user(self, request: web.Request) -> web.Response:
        return json_response(self._user(snowflake_param(request, "user_id")).payload())

    def _user(self, user_id: int) -> FakeUser:
        user = self.world.users.get(user_id)
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return user

    async def open_dm(self, request: web.Request) -> web.Response:
        body: Body = request[BODY]
        user = self._user(int((body.json or {}).get("recipient_id", 0)))
        return json_response(self.world.dm_channel(user).payload())

    async def application(self, request: web.Request) -> web.Response:
        world = self.world
        data: dict[str, Any] = {
            "id": str(world.app_id),
            "name": world.bot.name,
            "icon": None,
            "description": "",
            "summary": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "tags": [],
            "owner": self.owner.payload(),
            "team": None,
            "bot": world.bot.payload(),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(world.guilds),
            "integration_types_config": {"0": {}},
        }
        if self.team:
            team_id = str(self._team_id)
            data["owner"] = {
                "id": team_id,
                "username": f"team{team_id}",
                "discriminator": "0000",
                "avatar": None,
                "flags": 1024,
            }
            data["team"] = {
                "id": team_id,
                "name": "Operators",
                "icon": None,
                "owner_user_id": str(self.team[0].id),
                "members": [
                    {
                        "membership_state": 2,
                        "team_id": team_id,
                        "user": u.payload(),
                        "role": "admin",
                        "permissions": ["*"],
                    }
                    for u in self.team
                ],
            }
        return json_response(data)

    # -- commands ---------------------------------------------------------------------------------------------

    def _scope(self, request: web.Request) -> int | None:
        if snowflake_param(request, "app_id") != self.world.app_id:
            raise DiscordError(403, 50001, "Missing Access")
        if "guild_id" not in request.match_info:
            return None
        guild_id = snowflake_param(request, "guild_id")
        if guild_id not in self.world.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return guild_id

    async def list_commands(self, request: web.Request) -> web.Response:
        return json_response(self.world.commands.list(self._scope(request)))

    async def overwrite_commands(self, request: web.Request) -> web.Response:
        body: Body = request[BODY]
        return json_response(self.world.commands.overwrite(self._scope(request), body.json or []))

    async def upsert_command(self, request: web.Request) -> web.Response:
        body: Body = request[BODY]
        return json_response(self.world.commands.upsert(self._scope(request), body.json or {}), status=201)

    async def delete_command(self, request: web.Request) -> web.Response:
        if not self.world.commands.delete(self._scope(request), snowflake_param(request, "command_id")):
            raise DiscordError(404, 10063, "Unknown application command")
        return no_content()

    # -- entitlements -----------------------------------------------------------------------------------------

    async def entitlements(self, request: web.Request) -> web.Response:
        query, now = request.query, utcnow()
        found = list(self.world.entitlements)
        if "user_id" in query:
            found = [e for e in found if e.user_id == int(query["user_id"])]
        if "guild_id" in query:
            found = [e for e in found if e.guild_id == int(query["guild_id"])]
        if "sku_ids" in query:
            skus = {int(s) for s in query["sku_ids"].split(",")}
            found = [e for e in found if e.sku_id in skus]
        if query.get("exclude_ended") in ("1", "true"):
            found = [e for e in found if e.ends_at is None or e.ends_at > now]
        if query.get("exclude_deleted", "1") in ("1", "true"):
            found = [e for e in found if not e.deleted]
        if "after" in query:
            found = [e for e in found if e.id > int(query["after"])]
        if "before" in query:
            found = [e for e in found if e.id < int(query["before"])]
        found.sort(key=lambda e: e.id, reverse="after" not in query)
        return json_response([e.payload(self.world.app_id) for e in found[: int(query.get("limit", 100))]])

    async def consume_entitlement(self, request: web.Request) -> web.Response:
        wanted = snowflake_param(request, "entitlement_id")
        for ent in self.world.entitlements:
            if ent.id == wanted:
                ent.consumed = True
                self.world.changed()
                return no_content()
        raise DiscordError(404, 10069, "Unknown Entitlement")

    async def skus(self, request: web.Request) -> web.Response:
        return json_response(self.world.skus)

    # -- channels and messages --------------------------------------------------------------------------------

    async def channel(self, request: web.Request) -> web.Response:
        return json_response(self.world.channel(snowflake_param(request, "channel_id")).payload())

    async def typing(self, request: web.Request) -> web.Response:
        self.world.channel(snowflake_param(request, "channel_id"))
        return no_content()

    async def history(self, request: web.Request) -> web.Response:
        channel = self.world.channel(snowflake_param(request, "channel_id"))
        found, query = self.world.visible_messages(channel), request.query
        if not self.world.bot_permissions(channel) & READ_MESSAGE_HISTORY:
            found = []  # Discord answers, with no messages
        limit = int(query.get("limit", 50))
        if "after" in query:
            found = [m for m in found if m.id > int(query["after"])][:limit]
        else:
            found = [m for m in found if "before" not in query or m.id < int(query["before"])][-limit:]
        return json_response([m.payload() for m in reversed(found)])  # newest first, as Discord answers

    async def create_message(self, request: web.Request) -> web.Response:
        channel = self.world.channel(snowflake_param(request, "channel_id"))
        body: Body = request[BODY]
        payload = dict(body.json or {})
        payload["flags"] = int(payload.get("flags") or 0) & ~EPHEMERAL
        if channel.recipient is not None and not channel.recipient.dms_open:
            raise DiscordError(403, 50007, "Cannot send messages to this user")
        needed = VIEW_CHANNEL | SEND_MESSAGES | (ATTACH_FILES if body.files else 0)
        if self.world.bot_permissions(channel) & needed != needed:
            raise DiscordError(403, 50013, "Missing Permissions")
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce"):
            since = utcnow() - NONCE_WINDOW
            for msg in self.world.visible_messages(channel):
                if msg.nonce == str(nonce) and msg.author is self.world.bot and msg.created_at > since:
                    return json_response(msg.payload())
        return json_response(self.world.create_message(channel, self.world.bot, payload, body.files).payload())

    async def get_message(self, request: web.Request) -> web.Response:
        msg = self.world.message(snowflake_param(request, "channel_id"), snowflake_param(request, "message_id"))
        return json_response(msg.payload())

    async def edit_message(self, request: web.Request) -> web.Response:
        msg = self.world.message(snowflake_param(request, "channel_id"), snowflake_param(request, "message_id"))
        if msg.author is not self.world.bot:  # interaction responses too: the way to edit them after 15 minutes
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        body: Body = request[BODY]
        return json_response(self.world.edit_message(msg, body.json or {}, body.files).payload())

    async def delete_message(self, request: web.Request) -> web.Response:
        msg = self.world.message(snowflake_param(request, "channel_id"), snowflake_param(request, "message_id"))
        if msg.author is not self.world.bot and not self.world.bot_permissions(msg.channel) & MANAGE_MESSAGES:
            raise DiscordError(403, 50013, "Missing Permissions")
        self.world.delete_message(msg)
        return no_content()

    async def react(self, request: web.Request) -> web.Response:
        self.world.message(snowflake_param(request, "channel_id"), snowflake_param(request, "message_id"))
        return no_content()

    # -- guilds -----------------------------------------------------------------------------------------------

    async def guild(self, request: web.Request) -> web.Response:
        guild = self.world.guilds.get(snowflake_param(request, "guild_id"))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        data = guild.payload()
        for key in ("channels", "members", "threads", "voice_states", "presences"):
            data.pop(key)
        return json_response(data)

    async def member(self, request: web.Request) -> web.Response:
        guild = self.world.guilds.get(snowflake_param(request, "guild_id"))
        member = guild.members.get(snowflake_param(request, "user_id")) if guild else None
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return json_response(member.payload())

    # -- CDN --------------------------------------------------------------------------------------------------

    async def cdn_attachment(self, request: web.Request) -> web.Response:
        """``GET /cdn/(ephemeral-)attachments/{channel}/{id}/{filename}``: the stored bytes."""
        attachment = self.world.attachments.get(snowflake_param(request, "attachment_id"))
        if attachment is None:
            raise DiscordError(404, 0, "404: Not Found")
        return web.Response(body=attachment.data, headers={"Content-Type": attachment.content_type})
