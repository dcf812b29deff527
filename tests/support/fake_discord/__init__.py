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

For a bot subprocess, put ``BOOT_DIR`` on its PYTHONPATH and set ``SONGE_FAKE_DISCORD_URL`` to the base URL.
"""

from __future__ import annotations

import pathlib

from .interaction import FakeInteraction
from .messages import FakeAttachment, FakeMessage
from .models import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
)
from .records import Fault, InteractionResponse, RestCall
from .server import FakeDiscord

BOOT_DIR = pathlib.Path(__file__).resolve().parent / "boot"
URL_ENV = "SONGE_FAKE_DISCORD_URL"

__all__ = [
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "BOOT_DIR",
    "EVERYONE_PERMISSIONS",
    "URL_ENV",
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "Fault",
    "InteractionResponse",
    "RestCall",
]
