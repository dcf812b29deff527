"""Messages and their attachments as the fake holds them, and their JSON payloads."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .models import EPHEMERAL, LOADING, FakeChannel, FakeUser, iso, utcnow


def walk_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every component of a message or modal, nested ones included, depth first."""
    found: list[dict[str, Any]] = []
    stack = list(reversed(components))
    while stack:
        comp = stack.pop()
        found.append(comp)
        children = list(comp.get("components", []))
        children += [comp[key] for key in ("accessory", "component") if key in comp]
        stack.extend(reversed(children))
    return found


@dataclass(eq=False)
class FakeAttachment:
    """An uploaded file, its bytes kept and served from the fake CDN at ``url``."""

    id: int
    filename: str
    data: bytes = field(repr=False)
    content_type: str
    url: str
    width: int | None = None
    height: int | None = None
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        """Length in bytes."""
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        """The attachment object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
            "ephemeral": self.ephemeral,
            "flags": 0,
        }
        if self.description is not None:
            data["description"] = self.description
        return data


@dataclass(frozen=True)
class MessageVersion:
    """One earlier state of an edited message."""

    content: str
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    attachments: list[FakeAttachment]
    flags: int
    at: dt.datetime


@dataclass(eq=False)
class FakeMessage:
    """A message as the fake holds it; ``edits`` lists its earlier versions, oldest first."""

    id: int
    channel: FakeChannel
    author: FakeUser
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    nonce: str | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None
    created_at: dt.datetime = field(default_factory=utcnow)
    edited_at: dt.datetime | None = None
    deleted: bool = False
    edits: list[MessageVersion] = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"<FakeMessage id={self.id} channel={self.channel.name!r} author={self.author.name!r} "
            f"content={self.content[:40]!r} flags={self.flags} edits={len(self.edits)} deleted={self.deleted}>"
        )

    @property
    def ephemeral(self) -> bool:
        """Whether only the interaction's user sees it."""
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Whether it is still a deferred "thinking..." placeholder."""
        return bool(self.flags & LOADING)

    def walk_components(self) -> list[dict[str, Any]]:
        """Every component, nested ones included, depth first."""
        return walk_components(self.components)

    @property
    def custom_ids(self) -> list[str]:
        """The custom ids of all interactive components, in order."""
        return [c["custom_id"] for c in self.walk_components() if "custom_id" in c]

    @property
    def labels(self) -> list[str]:
        """The labels of all buttons, in order."""
        return [c["label"] for c in self.walk_components() if c.get("type") == 2 and "label" in c]

    def component(self, custom_id: str) -> dict[str, Any]:
        """The component with ``custom_id``; KeyError naming the ones present otherwise."""
        for comp in self.walk_components():
            if comp.get("custom_id") == custom_id:
                return comp
        raise KeyError(f"no component {custom_id!r} on message {self.id}; has {self.custom_ids}")

    def snapshot(self) -> MessageVersion:
        """The current state, for the edit history."""
        return MessageVersion(
            content=self.content,
            embeds=copy.deepcopy(self.embeds),
            components=copy.deepcopy(self.components),
            attachments=list(self.attachments),
            flags=self.flags,
            at=self.edited_at or self.created_at,
        )

    def payload(self) -> dict[str, Any]:
        """The message object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel.id),
            "type": self.type,
            "author": self.author.payload(),
            "content": self.content,
            "timestamp": iso(self.created_at),
            "edited_timestamp": iso(self.edited_at),
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [a.payload() for a in self.attachments],
            "embeds": copy.deepcopy(self.embeds),
            "components": copy.deepcopy(self.components),
            "pinned": False,
            "flags": self.flags,
        }
        if self.channel.guild_id is not None:
            data["guild_id"] = str(self.channel.guild_id)
        optional = {
            "nonce": self.nonce,
            "webhook_id": None if self.webhook_id is None else str(self.webhook_id),
            "application_id": None if self.application_id is None else str(self.application_id),
            "interaction_metadata": self.interaction_metadata,
            "message_reference": self.reference,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        return data
