"""The message catalogue: English and French, from `bot/locales/<lang>.json`, loaded once on first use.

Each catalogue has two flat sections: `messages` (what `t` renders, `str.format` placeholders) and
`commands` (slash-command names, descriptions, option names and choices, read by `SongeTranslator`).
Adding a message is one line in each file; tests check both files have the same keys and placeholders.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import string
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

from discord import Locale, app_commands
from discord.app_commands import TranslationContextLocation as Where

log = logging.getLogger(__name__)

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
_NAME = re.compile(r"[-_\w]{1,32}\Z")
_NAME_WHERE = frozenset({Where.command_name, Where.group_name, Where.parameter_name})
_ENGLISH_LOCALES = frozenset({Locale.american_english, Locale.british_english})


def language(locale: object) -> str:
    """`fr` for any French locale (`fr`, `fr-FR`, `discord.Locale.french`...), else `en`."""
    code = str(getattr(locale, "value", locale) or "").strip().lower().replace("_", "-")
    return "fr" if code == "fr" or code.startswith("fr-") else DEFAULT_LANGUAGE


@functools.cache
def catalogue(lang: str, section: str = "messages") -> Mapping[str, str]:
    """One section of one language's catalogue, read from the package data the first time it is asked for."""
    data = json.loads(resources.files("bot").joinpath("locales", f"{lang}.json").read_text(encoding="utf-8"))
    return MappingProxyType(data[section])


def t(key: str, locale: object, /, **values: Any) -> str:
    """The message `key` in the user's language (English when French lacks it), formatted with `values`."""
    lang = language(locale)
    template = catalogue(lang).get(key)
    if template is None:
        if lang != DEFAULT_LANGUAGE:
            log.warning("message %s missing in %s", key, lang)
        template = catalogue(DEFAULT_LANGUAGE)[key]
    return template.format_map(values)


def placeholders(template: str) -> set[str]:
    """The `{names}` a template needs."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def command_key(context: app_commands.TranslationContext[Any, Any]) -> str | None:
    """The catalogue key of a command string: `cmd.<path>.name`, `cmd.<path>.<option>.description`, ...;
    `cmd.menu.<name>.label` for a message or user menu."""
    where, data = context.location, context.data
    if isinstance(data, app_commands.ContextMenu):  # a menu has a label (any case, spaces) and no description
        return f"cmd.menu.{data.name.lower().replace(' ', '-')}.label" if where is Where.command_name else None
    if where in (Where.command_name, Where.group_name):
        return f"cmd.{_path(data)}.name"
    if where in (Where.command_description, Where.group_description):
        return f"cmd.{_path(data)}.description"
    if where in (Where.parameter_name, Where.parameter_description):
        suffix = "name" if where is Where.parameter_name else "description"
        return f"cmd.{_path(data.command)}.{data.display_name}.{suffix}"
    if where is Where.choice_name:
        return f"cmd.choice.{data.value}"
    return None


def valid_name(name: str) -> bool:
    """Discord's rule for command, group and option names: 1-32 lower-case letters, digits, `-` or `_`."""
    return bool(_NAME.match(name)) and name == name.lower()


class SongeTranslator(app_commands.Translator):
    """Localises the command tree from the `commands` catalogues: French for `fr`, English for en-US/en-GB.

    A `locale_str(..., key="...")` names its key; otherwise the key follows the string's place in the tree
    (see `command_key`). Missing or invalid entries give None, so Discord shows the default text.
    """

    async def translate(
        self, string: app_commands.locale_str, locale: Locale, context: app_commands.TranslationContext[Any, Any]
    ) -> str | None:
        if locale is Locale.french:
            lang = "fr"
        elif locale in _ENGLISH_LOCALES:
            lang = "en"
        else:
            return None
        key = string.extras.get("key") or command_key(context)
        text = catalogue(lang, "commands").get(key) if key else None
        if text is None:
            return None
        menu = isinstance(context.data, app_commands.ContextMenu)
        if context.location in _NAME_WHERE and not (len(text) <= 32 if menu else valid_name(text)):
            log.warning("ignoring invalid %s name %r for %s", lang, text, key)
            return None
        if len(text) > 100:
            log.warning("ignoring %s text of %s: longer than 100 characters", lang, key)
            return None
        return text


def _path(command: Any) -> str:
    return str(command.qualified_name).replace(" ", ".")
