"""Discord's limits on message payloads, so a bot that breaks one fails here as it would in production."""

from __future__ import annotations

from typing import Any

from .wire import DiscordError, invalid_form

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_CUSTOM_ID = 100
MAX_LABEL = 80
_EMBED_LIMITS = {"title": 256, "description": 4096}
IS_COMPONENTS_V2 = 1 << 15


def check_message(payload: dict[str, Any], *, creating: bool, has_files: bool) -> None:
    """Raise :class:`DiscordError` (400) where Discord would refuse ``payload``."""
    content = payload.get("content") or ""
    if len(content) > MAX_CONTENT:
        raise invalid_form("content", f"Must be {MAX_CONTENT} or fewer in length.")
    embeds = payload.get("embeds") or []
    components = payload.get("components") or []
    if creating and not (content or embeds or components or has_files or payload.get("sticker_ids")):
        raise DiscordError(400, 50006, "Cannot send an empty message")
    _check_embeds(embeds)
    _check_components(components, v2=bool(int(payload.get("flags") or 0) & IS_COMPONENTS_V2))


def _check_embeds(embeds: list[dict[str, Any]]) -> None:
    if len(embeds) > MAX_EMBEDS:
        raise invalid_form("embeds", f"Must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        for key, limit in _EMBED_LIMITS.items():
            text = embed.get(key) or ""
            total += len(text)
            if len(text) > limit:
                raise invalid_form(f"embeds.{index}.{key}", f"Must be {limit} or fewer in length.")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise invalid_form(f"embeds.{index}.fields", "Must be 25 or fewer in length.")
        total += sum(len(f.get("name") or "") + len(f.get("value") or "") for f in fields)
        total += len((embed.get("footer") or {}).get("text") or "") + len((embed.get("author") or {}).get("name") or "")
    if total > MAX_EMBED_TOTAL:
        raise invalid_form("embeds", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}")


def _check_components(components: list[dict[str, Any]], *, v2: bool) -> None:
    if not v2 and len(components) > MAX_ROWS:
        raise invalid_form("components", f"Must be {MAX_ROWS} or fewer in length.")
    seen: set[str] = set()
    stack = [(f"components.{i}", c) for i, c in enumerate(components)]
    while stack:
        path, comp = stack.pop()
        kind = comp.get("type")
        if not v2 and path.count(".") == 1 and kind != 1:
            raise invalid_form(f"{path}.type", "Top-level components must be action rows without IS_COMPONENTS_V2.")
        children = comp.get("components") or []
        if kind == 1 and len(children) > MAX_ROW_ITEMS:
            raise invalid_form(f"{path}.components", f"Must be {MAX_ROW_ITEMS} or fewer in length.")
        custom_id = comp.get("custom_id")
        if custom_id is not None:
            if not custom_id or len(custom_id) > MAX_CUSTOM_ID:
                raise invalid_form(f"{path}.custom_id", f"Must be between 1 and {MAX_CUSTOM_ID} in length.")
            if custom_id in seen:
                raise invalid_form(f"{path}.custom_id", "Component custom id cannot be duplicated")
            seen.add(custom_id)
        if kind == 2:
            _check_button(path, comp)
        stack.extend((f"{path}.components.{i}", c) for i, c in enumerate(children))
        stack.extend((f"{path}.{key}", comp[key]) for key in ("accessory", "component") if key in comp)


def _check_button(path: str, button: dict[str, Any]) -> None:
    if len(button.get("label") or "") > MAX_LABEL:
        raise invalid_form(f"{path}.label", f"Must be {MAX_LABEL} or fewer in length.")
    link = button.get("style") == 5
    premium = button.get("style") == 6
    if link and not button.get("url"):
        raise invalid_form(f"{path}.url", "A link button needs a url.")
    if not link and not premium and not button.get("custom_id"):
        raise invalid_form(f"{path}.custom_id", "A non-link button needs a custom_id.")
