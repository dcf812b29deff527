"""bot.i18n: the catalogues agree, `t` picks the language and falls back, the translator follows Discord's rules."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from bot import i18n
from bot.i18n import LANGUAGES, SongeTranslator, catalogue, language, placeholders, t, valid_name

SECTIONS = ("messages", "commands")
COMMANDS = ["imagine", "upscale", "info", "ledger", "fast", "relax", "turbo", "settings", "prefer", "prefer.suffix",
            "prefer.option", "prefer.option.set", "prefer.option.list", "prefer.option.delete", "show", "help", "admin",
            "server"]  # fmt: skip
ADMIN = ["user", "grant", "plan", "reset", "ban", "unban", "plans", "plan-edit", "stats", "pause", "resume", "backup"]
SERVER = ["channel-allow", "channel-remove", "channels-all", "nsfw", "buttons", "show"]


@pytest.mark.parametrize("section", SECTIONS)
def test_catalogues_have_the_same_keys_and_placeholders(section: str) -> None:
    english, french = catalogue("en", section), catalogue("fr", section)
    assert sorted(english) == sorted(french)
    assert {key: placeholders(text) for key, text in english.items()} == {
        key: placeholders(text) for key, text in french.items()
    }


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_formats_with_its_placeholders(lang: str) -> None:
    for key, template in catalogue(lang).items():
        assert t(key, lang, **dict.fromkeys(placeholders(template), "X")).strip(), key


def test_every_parser_error_key_is_in_the_catalogue() -> None:
    source = (Path(i18n.__file__).parent / "parsing.py").read_text(encoding="utf-8")
    keys = set(re.findall(r'"(parse\.error\.\w+)"', source))
    assert len(keys) >= 15 and keys <= set(catalogue("en"))


@pytest.mark.parametrize(
    ("locale", "lang"),
    [("fr", "fr"), ("fr-FR", "fr"), ("fr_CA", "fr"), ("FR", "fr"), (discord.Locale.french, "fr"), ("en-US", "en"),
     ("en-GB", "en"), ("de", "en"), ("", "en"), (None, "en"), ("french", "en"), (discord.Locale.german, "en")],
)  # fmt: skip
def test_language(locale: object, lang: str) -> None:
    assert language(locale) == lang


def test_t_renders_in_the_users_language() -> None:
    english = t("parse.error.range", "en-US", param="--seed", min=0, max=9, value="x")
    french = t("parse.error.range", "fr", param="--seed", min=0, max=9, value="x")
    assert "whole number from 0 to 9" in english and "nombre entier de 0 à 9" in french
    assert t("moderation.appeal", None) == "Appeal" and t("moderation.appeal", "fr") == "Contester"


def test_t_falls_back_to_english_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    tables = {("en", "messages"): {"a": "A {n}", "b": "B"}, ("fr", "messages"): {"b": "Bé"}}
    monkeypatch.setattr(i18n, "catalogue", lambda lang, section="messages": tables[lang, section])
    assert (t("a", "fr", n=1), t("b", "fr"), t("b", "en")) == ("A 1", "Bé", "B")
    with pytest.raises(KeyError):
        t("missing", "fr")


def test_values_are_not_formatted_again() -> None:
    assert "{evil}" in t("parse.error.aspect", "en", param="--ar", value="{evil}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_command_entries_follow_discords_rules(lang: str) -> None:
    commands = catalogue(lang, "commands")
    for key, text in commands.items():
        assert 1 <= len(text) <= 100, key
        if key.endswith(".name"):
            assert valid_name(text), (key, text)
    names = Counter((key.rsplit(".", 2)[0], text) for key, text in commands.items() if key.endswith(".name"))
    assert [clash for clash, count in names.items() if count > 1] == []  # siblings never share a name
    for path in COMMANDS + [f"admin.{name}" for name in ADMIN] + [f"server.{name}" for name in SERVER]:
        assert f"cmd.{path}.name" in commands and f"cmd.{path}.description" in commands, path


def test_valid_name() -> None:
    assert valid_name("réglages") and valid_name("plan-edit") and valid_name("x_1")
    assert not any(valid_name(name) for name in ("", "Imagine", "two words", "x" * 33, "a.b"))


async def _tree_payloads(translator: app_commands.Translator) -> dict[str, Any]:
    async def callback(interaction: discord.Interaction, prompt: str) -> None: ...

    async def grant(interaction: discord.Interaction, user: discord.User, hours: float) -> None: ...

    @app_commands.choices(kind=[app_commands.Choice(name="subtle", value="subtle")])
    async def upscale(interaction: discord.Interaction, kind: app_commands.Choice[str]) -> None: ...

    imagine: app_commands.Command[Any, ..., None] = app_commands.Command(
        name="imagine", description="Create images", callback=callback
    )
    admin = app_commands.Group(name="admin", description="Operators")
    admin.add_command(app_commands.Command(name="grant", description="Give time", callback=grant))
    settings: app_commands.Command[Any, ..., None] = app_commands.Command(
        name="upscale", description="Upscale", callback=upscale
    )
    other: app_commands.Command[Any, ..., None] = app_commands.Command(
        name="other", description=app_commands.locale_str("Other", key="cmd.help.description"), callback=callback
    )
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    for command in (imagine, admin, settings, other):
        tree.add_command(command)
    await tree.set_translator(translator)
    return {command.name: await command.get_translated_payload(tree, translator) for command in tree.get_commands()}


async def test_translator_localises_the_tree() -> None:
    payloads = await _tree_payloads(SongeTranslator())
    imagine, admin, upscale = payloads["imagine"], payloads["admin"], payloads["upscale"]
    assert imagine["name_localizations"] == {"en-US": "imagine", "en-GB": "imagine", "fr": "imagine"}
    assert imagine["description_localizations"]["fr"].startswith("Créer quatre images")
    prompt = imagine["options"][0]
    assert prompt["description_localizations"]["fr"] == catalogue("fr", "commands")["cmd.imagine.prompt.description"]
    grant = admin["options"][0]
    assert (admin["name_localizations"]["fr"], grant["name_localizations"]["fr"]) == ("admin", "créditer")
    assert [option["name_localizations"]["fr"] for option in grant["options"]] == ["utilisateur", "heures"]
    kind = upscale["options"][0]
    assert kind["name_localizations"]["fr"] == "mode"
    assert kind["choices"][0]["name_localizations"]["fr"] == "Subtil"
    help_text = catalogue("fr", "commands")["cmd.help.description"]
    assert payloads["other"]["description_localizations"]["fr"] == help_text
    assert not payloads["other"]["name_localizations"]  # no entry: Discord shows the default


async def test_translator_drops_invalid_names(monkeypatch: pytest.MonkeyPatch) -> None:
    tables = {"en": {}, "fr": {"cmd.imagine.name": "Imagine Ça", "cmd.imagine.description": "x" * 101}}
    monkeypatch.setattr(i18n, "catalogue", lambda lang, section="messages": tables[lang])
    payloads = await _tree_payloads(SongeTranslator())
    assert payloads["imagine"]["name_localizations"] == payloads["imagine"]["description_localizations"] == {}
