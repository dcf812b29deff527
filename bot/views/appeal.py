"""Appeals of blocked prompts: the user's Appeal button, the operators' Allow and Reject buttons."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import t

if TYPE_CHECKING:
    from bot.app import SongeBot

DECISION_ID = re.compile(r"songe-appeal:(?P<verdict>allow|reject):(?P<user>[0-9]{1,20}):(?P<channel>[0-9]{1,20})")
PROMPT_BLOCK = re.compile(r"```\n(?P<prompt>.*)\n```", re.DOTALL)


class AppealView(discord.ui.View):
    """Under an ephemeral refusal: sends the prompt to the operators' channel once."""

    def __init__(self, prompt: str, word: str, locale: str) -> None:
        super().__init__(timeout=900)
        self.prompt = prompt
        self.word = word
        self.locale = locale
        self.appeal.label = t("moderation.appeal", locale)

    @discord.ui.button(label="Appeal", style=discord.ButtonStyle.secondary, emoji="⚖️")
    async def appeal(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        bot: SongeBot = interaction.client  # type: ignore[assignment]
        channel_id = bot.settings.appeal_channel_id
        if channel_id is None:
            await interaction.response.send_message(t("appeal.no_channel", self.locale), ephemeral=True)
            return
        prompt = self.prompt.replace("```", "'''")[:1500]
        request = t(
            "appeal.request",
            None,
            user=f"<@{interaction.user.id}>",
            word=self.word,
            channel=f"<#{interaction.channel_id}>",
        )
        content = f"{request}\n```\n{prompt}\n```"
        view = discord.ui.View(timeout=None)
        for verdict, style in (("allow", discord.ButtonStyle.success), ("reject", discord.ButtonStyle.danger)):
            view.add_item(AppealDecision(verdict, interaction.user.id, interaction.channel_id or 0, style=style))
        await bot.get_partial_messageable(channel_id).send(
            content, view=view, allowed_mentions=discord.AllowedMentions.none()
        )
        button.disabled = True
        await interaction.response.edit_message(content=t("appeal.sent", self.locale), view=self)


class AppealDecision(discord.ui.DynamicItem[discord.ui.Button[Any]], template=DECISION_ID):
    """An operator's verdict; Allow runs the prompt for its author, charged to them."""

    def __init__(self, verdict: str, user_id: int, channel_id: int, *, style: discord.ButtonStyle) -> None:
        self.verdict = verdict
        self.user_id = user_id
        self.channel_id = channel_id
        super().__init__(
            discord.ui.Button(
                label=verdict.capitalize(), style=style, custom_id=f"songe-appeal:{verdict}:{user_id}:{channel_id}"
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> AppealDecision:
        style = discord.ButtonStyle.success if match["verdict"] == "allow" else discord.ButtonStyle.danger
        return cls(match["verdict"], int(match["user"]), int(match["channel"]), style=style)

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("Moderation")  # type: ignore[attr-defined]
        if cog is None:
            await interaction.response.send_message(
                t("error.feature_unavailable", str(interaction.locale)), ephemeral=True
            )
            return
        match = PROMPT_BLOCK.search(interaction.message.content if interaction.message else "")
        await cog.decide(interaction, self.verdict, self.user_id, self.channel_id, match["prompt"] if match else "")
