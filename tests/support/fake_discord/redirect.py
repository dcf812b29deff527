"""Point an unmodified discord.py at a fake Discord server: REST, gateway and CDN base URLs.

Self-contained on purpose (only discord and yarl imports): ``boot/sitecustomize.py`` loads this file by
path in bot subprocesses, before the repository is importable.
"""

from __future__ import annotations

from collections.abc import Callable

import discord.asset
import discord.gateway
import discord.http
import yarl


def apply(base_url: str) -> Callable[[], None]:
    """Send discord.py's REST calls, webhooks, gateway connections and CDN reads to ``base_url``.

    ``base_url`` is the fake's ``http://host:port``. Interaction callbacks and followups are built from
    ``Route.BASE`` too, so they follow. The gateway URL is a class attribute that discord.py extends with
    ``?v=10&encoding=json&compress=...`` through ``URL.with_query``, so its path is kept.
    Returns a function that puts the real Discord URLs back (for in-process tests).
    """
    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, discord.asset.Asset.BASE)
    base = base_url.rstrip("/")
    url = yarl.URL(base)
    gateway = url.with_scheme("wss" if url.scheme == "https" else "ws") / "gateway"
    discord.http.Route.BASE = f"{base}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
    discord.asset.Asset.BASE = f"{base}/cdn"

    def undo() -> None:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, discord.asset.Asset.BASE = saved

    return undo
