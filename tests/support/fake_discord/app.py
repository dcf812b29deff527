"""The aiohttp application: every request is recorded, may meet an injected fault, is authenticated and routed.

Requests no route takes are logged as errors, recorded in ``unknown_calls`` and answered with a 404 JSON
that names them, so a test shows what the fake is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .gateway import Gateway
from .records import RestCall
from .rest import RestApi
from .webhooks import InteractionWebhooks
from .wire import BODY, DiscordError, json_response, read_body
from .world import World

log = logging.getLogger(__name__)

API = "/api/v10"
MAX_BODY = 64 * 1024 * 1024
_NO_AUTH = ("/interactions/", "/webhooks/")  # discord.py sends no token on interaction webhooks
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(
    world: World, *, token: str, gateway: Gateway, rest: RestApi, webhooks: InteractionWebhooks
) -> web.Application:
    """The REST API under ``/api/v10``, the gateway at ``/gateway`` and the CDN under ``/cdn``."""
    front = _Front(world, token)
    app = web.Application(middlewares=[front.middleware], client_max_size=MAX_BODY)
    for route in [*rest.routes(), *webhooks.routes()]:
        app.router.add_route(route.method, API + route.path, route.handler)
    app.router.add_get("/gateway", gateway.handle)
    app.router.add_get("/cdn/{folder}/{channel_id}/{attachment_id}/{filename}", rest.cdn_attachment)
    return app


class _Front:
    def __init__(self, world: World, token: str) -> None:
        self.world = world
        self.token = token

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        path = request.path[len(API) :] if request.path.startswith(API + "/") else request.path
        call = RestCall(request.method, path, dict(request.query), None, [], time.monotonic())
        self.world.calls.append(call)
        try:
            body = await read_body(request)
            call.json, call.files = body.json, body.files
            request[BODY] = body
            response = self._fault(call) or await self._route(request, handler, call)
        except DiscordError as exc:
            response = exc.response()
        call.status = response.status
        self.world.changed()
        return response

    def _fault(self, call: RestCall) -> web.StreamResponse | None:
        fault = next((f for f in self.world.faults if f.matches(call.method, call.path)), None)
        if fault is None:
            return None
        fault.count -= 1
        call.fault = True
        log.info("fake Discord: injected %s for %s %s", fault.status, call.method, call.path)
        return fault.response()

    async def _route(self, request: web.Request, handler: Handler, call: RestCall) -> web.StreamResponse:
        authorized = request.headers.get("Authorization") == f"Bot {self.token}"
        if request.path.startswith(API) and not call.path.startswith(_NO_AUTH) and not authorized:
            raise DiscordError(401, 0, "401: Unauthorized")
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            self.world.unknown_calls.append(call)
            text = f"fake Discord has no route for {call.method} {request.path}"
            log.error("%s: add it to tests/support/fake_discord", text)
            return json_response({"message": text, "code": 0}, status=404)
