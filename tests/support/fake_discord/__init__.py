"""A fake Discord (REST + gateway + CDN on 127.0.0.1) that the real, unmodified discord.py talks to.

In a test (pytest-asyncio)::

    server = FakeDiscord(owner_id=...)
    guild = server.add_guild("Test")
    channel = server.add_channel(guild, "art")
    alice = server.add_user("alice", locale="fr")
    undo = redirect.apply(await server.start())   # in-process; undo() puts discord.com back
    ...start the bot with server.token...
    await server.wait_ready()
    itx = await server.slash(alice, channel, "imagine", prompt="a red fox")
    assert (await itx.response()).deferred
    msg = await itx.original()                    # the placeholder, once filled
    await server.click(alice, msg, msg.custom_ids[0])
    ...
    undo(); await server.stop()

Every wait (``wait_until``, ``wait_for_message``, ``itx.response()``...) re-checks on each change of the fake's
state, so it waits on what the bot sends to the fake, never on sleeps; ``tests/e2e/test_fake_discord.py``
shows each feature in use.

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
