"""What the fake records (REST calls, interaction callbacks) and the faults tests inject."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .wire import UploadedFile, json_response


@dataclass
class RestCall:
    """One HTTP request the client made. ``path`` is relative to ``/api/v10`` (or starts with ``/cdn``)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    at: float  # time.monotonic() when received
    status: int = 0  # filled in once answered
    fault: bool = False  # answered by an injected fault


@dataclass
class Fault:
    """An injected failure: the next ``count`` requests matching ``method`` and ``path`` get ``status``."""

    method: str
    path: re.Pattern[str]
    status: int
    count: int
    retry_after: float = 0.2
    code: int = 0
    message: str | None = None
    is_global: bool = False

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault takes a request (``path`` fully matches the pattern)."""
        return self.count > 0 and self.method in (method, "*") and self.path.fullmatch(path) is not None

    def response(self) -> web.Response:
        """The failure, shaped like Discord's (a 429 carries the headers discord.py needs to retry it)."""
        if self.status != 429:
            text = self.message or f"{self.status}: injected failure"
            return json_response({"message": text, "code": self.code}, status=self.status)
        reset_after = f"{self.retry_after:.3f}"
        headers = {
            "Via": "1.1 google",  # discord.py treats a 429 without Via as a Cloudflare ban and gives up
            "Retry-After": str(max(1, round(self.retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
            "X-RateLimit-Reset-After": reset_after,
            "X-RateLimit-Bucket": "fake-bucket",
            "X-RateLimit-Scope": "global" if self.is_global else "user",
        }
        if self.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": self.message or "You are being rate limited.",
            "retry_after": self.retry_after,
            "global": self.is_global,
            "code": self.code,
        }
        return json_response(body, status=429, headers=headers)


@dataclass
class InteractionResponse:
    """The bot's answer to an interaction (its callback): ``type`` 4-9/12, ``data`` as sent."""

    type: int
    data: dict[str, Any]
    at: float  # time.monotonic() when received
    elapsed: float | None  # seconds since INTERACTION_CREATE went out on the gateway
    files: list[UploadedFile] = field(default_factory=list)

    CHANNEL_MESSAGE = 4
    DEFERRED_CHANNEL_MESSAGE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    AUTOCOMPLETE_RESULT = 8
    MODAL = 9
    LAUNCH_ACTIVITY = 12

    @property
    def flags(self) -> int:
        """The message flags sent with it."""
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        """Whether the answer is ephemeral (flag 64)."""
        return bool(self.flags & 64)

    @property
    def deferred(self) -> bool:
        """Whether it is a deferral (5 or 6)."""
        return self.type in (self.DEFERRED_CHANNEL_MESSAGE, self.DEFERRED_UPDATE_MESSAGE)

    @property
    def content(self) -> str:
        """Message content, empty when none."""
        return str(self.data.get("content") or "")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """Embeds sent with it."""
        return list(self.data.get("embeds") or [])

    @property
    def components(self) -> list[dict[str, Any]]:
        """Top-level components (a modal's too)."""
        return list(self.data.get("components") or [])

    @property
    def choices(self) -> list[dict[str, Any]]:
        """Autocomplete choices (type 8)."""
        return list(self.data.get("choices") or [])
