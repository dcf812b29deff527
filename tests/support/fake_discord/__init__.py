"""A fake Discord (REST + gateway + CDN on 127.0.0.1) that the real, unmodified discord.py talks to.

In a test::

    server = FakeDiscord(app_id=..., owner_id=...)
    guild = server.add_guild("Test"); channel = server.add_channel(guild, "art")
    alice = server.add_user("alice")
    redirect.apply(await server.start())          # or run the bot with boot/ on PYTHONPATH
    ...start the bot with server.token...
    await server.wait_ready()
    itx = await server.slash(alice, channel, "imagine", prompt="a red fox")
    assert (await itx.response()).deferred
    msg = await itx.original()

For a bot subprocess (``python -m bot``), run it with ``env=subprocess_env(base_url)``: that puts ``BOOT_DIR``
on its PYTHONPATH and sets ``SONGE_FAKE_DISCORD_URL``, and its ``sitecustomize`` redirects discord.py.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

from .interaction import FakeInteraction
from .messages import FakeAttachment, FakeMessage
from .models import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    FakeChannel,
    FakeEntitlement,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
)
from .records import Fault, InteractionResponse, RestCall
from .server import FakeDiscord

BOOT_DIR = pathlib.Path(__file__).resolve().parent / "boot"
URL_ENV = "SONGE_FAKE_DISCORD_URL"


def subprocess_env(base_url: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) plus what redirects a Python subprocess's discord.py to ``base_url``."""
    result = dict(os.environ if env is None else env)
    result["PYTHONPATH"] = os.pathsep.join(p for p in (str(BOOT_DIR), result.get("PYTHONPATH", "")) if p)
    result[URL_ENV] = base_url
    return result


__all__ = [
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "BOOT_DIR",
    "EVERYONE_PERMISSIONS",
    "URL_ENV",
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeEntitlement",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "Fault",
    "InteractionResponse",
    "RestCall",
    "subprocess_env",
]
