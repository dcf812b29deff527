"""French through Discord: replies in the user's language, and a command tree localised from the catalogues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.i18n import LANGUAGES, catalogue
from tests.e2e.account_support import answer, button, fixed_cost_queue, imagine, slash_answer
from tests.e2e.conftest import World, songe_inprocess

pytestmark = pytest.mark.e2e

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
CHAT_INPUT = 1


def _entries(payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(catalogue key prefix, payload part) for a synced command and everything in it that Discord localises."""
    if payload["type"] != CHAT_INPUT:
        return [(f"cmd.menu.{payload['name'].lower().replace(' ', '-')}.label", payload)]
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(node: dict[str, Any], path: str) -> None:
        found.append((f"cmd.{path}", node))
        for option in node.get("options", []):
            if option["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP):
                walk(option, f"{path}.{option['name']}")
            else:
                found.append((f"cmd.{path}.{option['name']}", option))
                found.extend((f"cmd.choice.{choice['value']}", choice) for choice in option.get("choices", []))

    walk(payload, payload["name"])
    return found


async def test_the_catalogues_name_exactly_the_commands_options_and_choices_of_the_cogs(
    world: World, tmp_path: Path
) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]):
        synced = world.server.commands(world.guild)
    entries = [entry for payload in synced for entry in _entries(payload)]
    wanted = set()
    for key, _node in entries:
        if key.startswith(("cmd.choice.", "cmd.menu.")):
            wanted.add(key)
        else:
            wanted |= {f"{key}.name", f"{key}.description"}
    for lang in LANGUAGES:
        keys = set(catalogue(lang, "commands"))
        assert sorted(wanted - keys) == [], f"{lang}: commands, options or choices without an entry"
        assert sorted(keys - wanted) == [], f"{lang}: entries naming no command, option or choice"


async def test_every_synced_name_and_description_has_its_french_version(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]):
        synced = world.server.commands(world.guild)
    french = catalogue("fr", "commands")
    assert len(synced) == 15  # 13 slash commands and the two message menus
    for payload in synced:
        for key, node in _entries(payload):
            if key.startswith(("cmd.choice.", "cmd.menu.")):
                assert node["name_localizations"]["fr"] == french[key], key
            else:
                assert node["name_localizations"]["fr"] == french[f"{key}.name"], key
                assert node["description_localizations"]["fr"] == french[f"{key}.description"], key
    by_name = {payload["name"]: payload for payload in synced}
    assert by_name["settings"]["name_localizations"]["fr"] == "réglages"
    grant = next(o for o in by_name["admin"]["options"] if o["name"] == "grant")
    assert [o["name_localizations"]["fr"] for o in grant["options"]] == ["utilisateur", "heures", "motif"]
    assert by_name["Upscale"]["name_localizations"]["fr"] == "Agrandir"


async def test_a_french_user_reads_french(world: World, tmp_path: Path) -> None:
    amelie = world.frenchie
    words = tmp_path / "banned.txt"
    words.write_text("nsfw\n", encoding="utf-8")
    async with songe_inprocess(
        world,
        tmp_path / "data",
        queue_factory=fixed_cost_queue()[1],
        SONGE_FREE_SECONDS="60",
        SONGE_BANNED_WORDS=str(words),
    ) as bot:
        info = await slash_answer(world, amelie, "info")
        assert "**Forfait :** free" in info and "Temps rapide restant : 60 s/60 s (100 %)" in info

        ran = await imagine(world, amelie, "un phare au crépuscule")
        assert "en file en mode fast" in ran.accepted.content
        assert "Temps GPU" in ran.grid.content or "temps GPU" in ran.grid.content

        refusal = await slash_answer(world, amelie, "relax")
        assert "Le mode relax ne fait pas partie du forfait **free**" in refusal
        bad = await slash_answer(world, amelie, "imagine", prompt="un phare --ar 9:1")
        assert "`--ar`" in bad and "entre 1:4 et 4:1" in bad

        await bot.store.grant(amelie.id, -3600, operator_id=world.operator.id, reason="épuisé")
        out = await slash_answer(world, amelie, "imagine", prompt="un phare")
        assert "Vous n'avez plus de temps rapide" in out and "Demandez plus de temps aux opérateurs" in out

        blocked = await answer(await world.server.slash(amelie, world.channel, "imagine", prompt="un phare nsfw"))
        assert "mot bloqué" in blocked.content and "Contester" in blocked.labels

        not_operator = await slash_answer(world, amelie, "admin", "plans")
        assert "Seuls les opérateurs" in not_operator

        await slash_answer(world, world.admin, "server", "buttons", author_only=True)
        grid = (await imagine(world, world.alice, "a lighthouse")).grid
        click = await world.server.click(amelie, grid, button(grid, "V1"))
        assert "Seul l'auteur" in (await answer(click)).content


async def test_the_same_user_reads_english_from_an_english_client(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fixed_cost_queue()[1]):
        itx = await world.server.slash(world.frenchie, world.channel, "info", locale="en-GB")
        assert "**Plan:** free" in (await answer(itx)).content
