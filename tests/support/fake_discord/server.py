"""``FakeDiscord``: the server the real discord.py client talks to, and the API tests drive it with."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web

from .actions import UserActions
from .app import build_app
from .builders import WorldBuilder
from .gateway import Gateway
from .interaction import FakeInteraction
from .messages import FakeMessage
from .models import FakeChannel, FakeGuild, FakeUser, Snowflakes
from .records import Fault, RestCall
from .rest import RestApi
from .webhooks import InteractionWebhooks
from .world import World

log = logging.getLogger(__name__)

T = TypeVar("T")


class FakeDiscord(UserActions, WorldBuilder):
    """An in-memory Discord (REST, gateway, CDN) on 127.0.0.1 for one test.

    Build the world (``add_guild``, ``add_channel``, ``add_user``...), ``await start()``, point discord.py at
    the returned base URL with :func:`tests.support.fake_discord.redirect.apply`, then act as users
    (``slash``, ``click``, ``submit_modal``, ``autocomplete``, ``context_menu``, ``say``) and wait for what
    the bot does (``wait_for_message``, ``FakeInteraction.response/original/followups``).

    ``token_lifetime`` is how long interaction tokens work (Discord: 15 minutes); ``callback_deadline``,
    when set, refuses callbacks that come later than that after dispatch (Discord: 3 s) with 10062.
    """

    def __init__(
        self,
        *,
        app_id: int | None = None,
        bot_user_id: int | None = None,
        owner_id: int | None = None,
        team_member_ids: Iterable[int] = (),
        token: str = "fake-bot-token",
        bot_name: str = "Songe",
        shards: int = 1,
        heartbeat_interval: float = 5.0,
        token_lifetime: float = 900.0,
        callback_deadline: float | None = None,
        attachment_size_limit: int = 10 * 1024 * 1024,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.snowflakes = Snowflakes()
        app_id = app_id or self.snowflakes.next()
        bot = FakeUser(id=bot_user_id or app_id, name=bot_name, bot=True)
        self.world = World(
            app_id=app_id, bot=bot, snowflakes=self.snowflakes, attachment_size_limit=attachment_size_limit
        )
        self.token = token
        self.token_lifetime = token_lifetime
        self.owner = self._user(owner_id or self.snowflakes.next(), "owner")
        team = [self.owner, *(self._user(i, f"operator{n}") for n, i in enumerate(team_member_ids))]
        self.gateway = Gateway(self.world, token=token, heartbeat_interval=heartbeat_interval, on_sent=self._on_sent)
        self.world.emit = self.gateway.dispatch
        self.rest = RestApi(
            self.world,
            owner=self.owner,
            team=team if len(team) > 1 else [],
            shards=shards,
            gateway_url=lambda: self.gateway.url,
        )
        self.webhooks = InteractionWebhooks(self.world, callback_deadline=callback_deadline)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on ``host:port`` (0: any free port); returns the base URL, e.g. ``http://127.0.0.1:40123``."""
        app = build_app(self.world, token=self.token, gateway=self.gateway, rest=self.rest, webhooks=self.webhooks)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = self.world.base_url = f"http://{self._host}:{port}"
        self.gateway.url = f"ws://{self._host}:{port}/gateway"
        log.info("fake Discord listening on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._runner is not None:
            await self.gateway.close()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _on_sent(self, payload: dict[str, Any]) -> None:
        if payload.get("t") == "INTERACTION_CREATE":
            itx = self.world.interactions.get(int(payload["d"]["id"]))
            if itx is not None and itx.dispatched_at is None:
                itx.dispatched_at = time.monotonic()

    # -- looking at what happened ---------------------------------------------------------------------------

    def messages(self, channel: FakeChannel) -> list[FakeMessage]:
        """The channel's live messages everyone sees, oldest first."""
        return self.world.visible_messages(channel)

    def dm_messages(self, user: FakeUser) -> list[FakeMessage]:
        """The live messages of the bot's DM with ``user``, oldest first."""
        return self.world.visible_messages(self.world.dm_channel(user))

    def commands(self, guild: FakeGuild | None = None) -> list[dict[str, Any]]:
        """The commands the bot synced, globally or for ``guild``."""
        return self.world.commands.list(None if guild is None else guild.id)

    @property
    def interactions(self) -> list[FakeInteraction]:
        """Every interaction sent, oldest first, each with the bot's callback and messages."""
        return list(self.world.interactions.values())

    @property
    def calls(self) -> list[RestCall]:
        """Every HTTP request received, in order."""
        return self.world.calls

    @property
    def unknown_calls(self) -> list[RestCall]:
        """Requests no route handled (each also logged as an error): a test can assert this stays empty."""
        return self.world.unknown_calls

    def requests(self, method: str | None = None, path: str | None = None) -> list[RestCall]:
        """Recorded calls with that method and a path that fully matches the regex ``path``."""
        pattern = re.compile(path) if path else None
        return [
            c
            for c in self.world.calls
            if (method is None or c.method == method) and (pattern is None or pattern.fullmatch(c.path))
        ]

    @property
    def identify_count(self) -> int:
        """How many IDENTIFYs the gateway accepted."""
        return self.gateway.identifies

    @property
    def resume_count(self) -> int:
        """How many RESUMEs the gateway accepted."""
        return self.gateway.resumes

    # -- waiting ----------------------------------------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], T | None], timeout: float = 5.0, what: str = "a condition") -> T:
        """The first truthy ``predicate()``, re-checked whenever the fake's state changes."""
        return await self.world.wait_until(predicate, timeout=timeout, what=what)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the bot identified on every shard and got READY and its GUILD_CREATEs."""

        def all_ready() -> bool:
            ready = self.gateway.ready_shards()
            return any(all((i, count) in ready for i in range(count)) for _, count in ready)

        await self.wait_until(all_ready, timeout, "the bot to identify and receive its guilds")

    async def wait_for_message(
        self,
        channel: FakeChannel | None = None,
        predicate: Callable[[FakeMessage], bool] | None = None,
        *,
        timeout: float = 5.0,
    ) -> FakeMessage:
        """The first live message (in ``channel``, or anywhere; ephemeral ones included) matching ``predicate``,
        as posted or edited; waits for one to appear."""

        def find() -> FakeMessage | None:
            for msg in sorted(self.world.messages.values(), key=lambda m: m.id):
                if (
                    not msg.deleted
                    and (channel is None or msg.channel is channel)
                    and (predicate is None or predicate(msg))
                ):
                    return msg
            return None

        where = "anywhere" if channel is None else f"#{channel.name}"
        return await self.wait_until(find, timeout, f"a matching message {where}")

    # -- faults -----------------------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int = 429,
        retry_after: float = 0.2,
        count: int = 1,
        code: int = 0,
        message: str | None = None,
        is_global: bool = False,
    ) -> Fault:
        """Answer the next ``count`` requests ``method`` (or ``"*"``) whose path (after ``/api/v10``) fully
        matches regex ``path`` with ``status``: a 429 with Discord's body and rate-limit headers, or an error
        JSON with ``code`` and ``message``."""
        fault = Fault(
            method=method,
            path=re.compile(path),
            status=status,
            count=count,
            retry_after=retry_after,
            code=code,
            message=message,
            is_global=is_global,
        )
        self.world.faults.append(fault)
        return fault

    async def drop_gateway(self, *, code: int | None = 4000, shard: int | None = None) -> None:
        """Close the gateway connection(s) (``code`` None: cut TCP as a 1006); the session stays resumable and
        events meanwhile are replayed on RESUME."""
        await self.gateway.drop(code=code, shard=shard)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT: the client should close and RESUME."""
        await self.gateway.reconnect()

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION: the client should IDENTIFY again (or RESUME when ``resumable``)."""
        await self.gateway.invalidate(resumable=resumable)
