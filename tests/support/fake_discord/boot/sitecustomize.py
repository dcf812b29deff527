"""Test-only: put this folder on PYTHONPATH of a bot subprocess to redirect discord.py to a fake Discord.

Python imports ``sitecustomize`` at start-up (in a venv too); when ``SONGE_FAKE_DISCORD_URL`` is set this
loads ``../redirect.py`` by path (the repository need not be importable yet) and applies it.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib


def _redirect(base_url: str) -> None:
    path = pathlib.Path(__file__).resolve().parent.parent / "redirect.py"
    spec = importlib.util.spec_from_file_location("_songe_fake_discord_redirect", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.apply(base_url)


if os.environ.get("SONGE_FAKE_DISCORD_URL"):
    _redirect(os.environ["SONGE_FAKE_DISCORD_URL"])
