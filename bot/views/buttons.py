"""Persistent buttons: custom ids carry the action, the job id and the image index.

`songe:<action>:<job id>:<index>` — parsed by one `DynamicItem`, so every button keeps
working after a restart. The action handlers live in the results cog; if it is not loaded
the click is answered politely instead of failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import discord

from bot.errors import send_ephemeral
from bot.i18n import t

CUSTOM_ID = re.compile(r"songe:(?P<action>[a-z0-9]{1,10}):(?P<job>[0-9a-f]{32}):(?P<index>[0-4])")
UNKNOWN_ID = re.compile(r"songe:(?![a-z0-9]{1,10}:[0-9a-f]{32}:[0-4]\Z).{0,94}", re.DOTALL)


@dataclass(frozen=True)
class Action:
    key: str
    label: str
    emoji: str | None = None
    style: discord.ButtonStyle = discord.ButtonStyle.secondary


UPSCALE_SUBTLE = Action("ups", "Upscale (Subtle)")
UPSCALE_CREATIVE = Action("upc", "Upscale (Creative)")
VARY_SUBTLE = Action("vsub", "Vary (Subtle)")
VARY_STRONG = Action("vstr", "Vary (Strong)")
VARY_REGION = Action("vreg", "Vary (Region)")
ZOOM_2 = Action("zoom2", "Zoom Out 2x", "🔍")
ZOOM_15 = Action("zoom15", "Zoom Out 1.5x", "🔍")
ZOOM_CUSTOM = Action("zoomc", "Custom Zoom", "🔍")
SQUARE = Action("square", "Make Square", "↔️")
REMIX = Action("remix", "Remix", "🖌️")
PAN_LEFT = Action("panl", "", "⬅️")
PAN_RIGHT = Action("panr", "", "➡️")
PAN_UP = Action("panu", "", "⬆️")
PAN_DOWN = Action("pand", "", "⬇️")
REROLL = Action("reroll", "", "🔄")
DELETE = Action("delete", "", "🗑️")
CANCEL = Action("cancel", "Cancel", "✖️", discord.ButtonStyle.danger)


def _upscale(index: int) -> Action:
    return Action("u", f"U{index}")


def _vary(index: int) -> Action:
    return Action("v", f"V{index}")


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID):
    """One button of a Songe message; the click goes to the results cog."""

    def __init__(self, action: Action | str, job_id: str, index: int = 0, *, row: int | None = None) -> None:
        if isinstance(action, str):
            action = Action(action, action)
        self.action = action.key
        self.job_id = job_id
        self.index = index
        button: discord.ui.Button[Any] = discord.ui.Button(
            label=action.label or None,
            emoji=action.emoji,
            style=action.style,
            custom_id=f"songe:{action.key}:{job_id}:{index}",
            row=row,
        )
        super().__init__(button)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> JobButton:
        return cls(match["action"], match["job"], int(match["index"]))

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        await interaction.client.pacer.turn()  # type: ignore[attr-defined]  # a burst of clicks enters paced
        return True

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("Results")  # type: ignore[attr-defined]
        if cog is None:
            await send_ephemeral(interaction, t("error.feature_unavailable", str(interaction.locale)))
            return
        await cog.handle_button(interaction, self.action, self.job_id, self.index)


class UnknownButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=UNKNOWN_ID):
    """Any other `songe:` id (a stale layout, a forged id): a clear refusal instead of a failed interaction."""

    def __init__(self, custom_id: str) -> None:
        super().__init__(discord.ui.Button(label="?", custom_id=custom_id))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> UnknownButton:
        return cls(match.string)

    async def callback(self, interaction: discord.Interaction) -> None:
        await send_ephemeral(interaction, t("error.unknown_button", str(interaction.locale)))


def _view(rows: list[list[tuple[Action, int]]], job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for row_number, row in enumerate(rows):
        for action, index in row:
            view.add_item(JobButton(action, job_id, index, row=row_number))
    return view


def grid_view(job_id: str) -> discord.ui.View:
    """U1-U4, V1-V4, re-roll and delete under a 2x2 grid."""
    return _view(
        [
            [(_upscale(i), i) for i in range(1, 5)],
            [(_vary(i), i) for i in range(1, 5)] + [(REROLL, 0)],
            [(DELETE, 0)],
        ],
        job_id,
    )


def single_view(job_id: str, index: int) -> discord.ui.View:
    """Every operation Midjourney offers on one image."""
    return _view(
        [
            [(UPSCALE_SUBTLE, index), (UPSCALE_CREATIVE, index), (VARY_SUBTLE, index), (VARY_STRONG, index)],
            [(VARY_REGION, index), (REMIX, index), (ZOOM_2, index), (ZOOM_15, index), (ZOOM_CUSTOM, index)],
            [(PAN_LEFT, index), (PAN_RIGHT, index), (PAN_UP, index), (PAN_DOWN, index), (SQUARE, index)],
            [(DELETE, 0)],
        ],
        job_id,
    )


def progress_view(job_id: str) -> discord.ui.View:
    return _view([[(CANCEL, 0)]], job_id)


def parse_custom_id(custom_id: str) -> tuple[str, str, int] | None:
    """(action, job id, index) of a Songe button id, or None for anything else."""
    match = CUSTOM_ID.fullmatch(custom_id)
    if match is None:
        return None
    return match["action"], match["job"], int(match["index"])


def job_of_message(message: discord.Message) -> tuple[str, int] | None:
    """The job id and image index a Songe result message is about (read from its buttons)."""
    for row in message.components:
        for child in getattr(row, "children", []):
            parsed = parse_custom_id(getattr(child, "custom_id", "") or "")
            if parsed and parsed[0] not in {"cancel", "delete"}:
                action, job_id, index = parsed
                return job_id, (index if action not in {"u", "v", "reroll"} else 0)
    return None
