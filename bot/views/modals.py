"""Modals for Remix, Custom Zoom and Vary (Region): short-lived, answered within minutes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import discord

from bot.errors import SongeError
from bot.i18n import t


class ModalHost(Protocol):
    async def modal_error(self, interaction: discord.Interaction, exc: BaseException) -> None: ...


def _prompt_input(locale: str, prompt: str) -> discord.ui.TextInput[Any]:
    return discord.ui.TextInput(
        label=t("modal.prompt", locale)[:45], default=prompt[:4000], style=discord.TextStyle.paragraph, max_length=4000
    )


class _Modal(discord.ui.Modal):
    def __init__(self, title: str, host: ModalHost) -> None:
        super().__init__(title=title[:45], timeout=600)
        self.host = host

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await self.host.modal_error(interaction, error)


class PromptModal(_Modal):
    """Remix: edit the prompt before a variation."""

    def __init__(
        self, locale: str, prompt: str, done: Callable[[discord.Interaction, str], Awaitable[None]], host: ModalHost
    ) -> None:
        super().__init__(t("modal.remix_title", locale), host)
        self.done = done
        self.prompt = _prompt_input(locale, prompt)
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        await self.done(interaction, self.prompt.value.strip())


def parse_zoom(text: str) -> float:
    """A custom zoom factor between 1.0 and 2.0."""
    try:
        factor = float(text.replace(",", ".").strip())
    except ValueError:
        raise SongeError("error.zoom_factor") from None
    if not 1.0 <= factor <= 2.0:
        raise SongeError("error.zoom_factor")
    return factor


def parse_region(text: str) -> tuple[float, float, float, float]:
    """`left,top,right,bottom` in percent of the image, e.g. `25,25,75,75`."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        values = [float(p.rstrip("%")) / 100 for p in parts]
    except ValueError:
        raise SongeError("error.region") from None
    if len(values) != 4:
        raise SongeError("error.region")
    left, top, right, bottom = values
    if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1) or (right - left) * (bottom - top) < 0.01:
        raise SongeError("error.region")
    return left, top, right, bottom


class ZoomModal(_Modal):
    """Custom Zoom: a factor from 1.0 to 2.0 and an optional new prompt."""

    def __init__(
        self,
        locale: str,
        prompt: str,
        done: Callable[[discord.Interaction, str, float], Awaitable[None]],
        host: ModalHost,
    ) -> None:
        super().__init__(t("modal.zoom_title", locale), host)
        self.done = done
        self.prompt = _prompt_input(locale, prompt)
        self.factor: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label=t("modal.zoom_factor", locale)[:45], default="1.5", max_length=4
        )
        self.add_item(self.prompt)
        self.add_item(self.factor)

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        await self.done(interaction, self.prompt.value.strip(), parse_zoom(self.factor.value))


class RegionModal(_Modal):
    """Vary (Region): the area to regenerate, in percent, and the prompt for it."""

    def __init__(
        self,
        locale: str,
        prompt: str,
        done: Callable[[discord.Interaction, str, tuple[float, float, float, float]], Awaitable[None]],
        host: ModalHost,
    ) -> None:
        super().__init__(t("modal.region_title", locale), host)
        self.done = done
        self.prompt = _prompt_input(locale, prompt)
        self.region: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label=t("modal.region", locale)[:45], default="25,25,75,75", max_length=40
        )
        self.add_item(self.prompt)
        self.add_item(self.region)

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        await self.done(interaction, self.prompt.value.strip(), parse_region(self.region.value))
