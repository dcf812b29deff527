"""HTTP plumbing shared by the REST and webhook routes: request bodies in, Discord-shaped JSON out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

# discord.py parses a body as JSON only when Content-Type is exactly this (no charset suffix).
JSON_TYPE = "application/json"

_FILE_FIELD = re.compile(r"files\[(\d+)\]")


@dataclass(frozen=True)
class UploadedFile:
    """One ``files[n]`` part of a multipart request."""

    index: int
    filename: str
    content_type: str
    data: bytes


@dataclass
class Body:
    """A request body: the JSON payload (``payload_json`` for multipart) and the uploaded files."""

    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)


# Where the middleware leaves the parsed body for the handlers (aiohttp >= 3.12 wants typed keys).
BODY: Any = web.RequestKey("body", Body) if hasattr(web, "RequestKey") else "body"


class DiscordError(Exception):
    """Raised by handlers to answer with Discord's error JSON ``{"message", "code"[, "errors"]}``."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def response(self) -> web.Response:
        """The aiohttp response for this error."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


def unknown(kind: str, code: int) -> DiscordError:
    """A 404 like ``Unknown Message`` (10008)."""
    return DiscordError(404, code, f"Unknown {kind}")


def invalid_form(path: str, message: str) -> DiscordError:
    """A 400 ``Invalid Form Body`` (50035) with one error at a dotted ``path``."""
    tree: dict[str, Any] = {"_errors": [{"code": "BASE_TYPE_INVALID", "message": message}]}
    for part in reversed(path.split(".")):
        tree = {part: tree}
    return DiscordError(400, 50035, "Invalid Form Body", tree)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with the exact Content-Type discord.py expects."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": JSON_TYPE, **(headers or {})}
    )


def no_content() -> web.Response:
    """204."""
    return web.Response(status=204)


async def read_body(request: web.Request) -> Body:
    """Parse a JSON or multipart (``payload_json`` + ``files[n]``) body; empty for other requests."""
    if request.content_type.startswith("multipart/"):
        body = Body()
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            data = await part.read(decode=False)
            if name == "payload_json":
                body.json = json.loads(bytes(data))
            elif match := _FILE_FIELD.fullmatch(name):
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                body.files.append(UploadedFile(int(match[1]), part.filename or name, content_type, bytes(data)))
        return body
    raw = await request.read()
    if not raw:
        return Body()
    try:
        return Body(json=json.loads(raw))
    except ValueError:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None


def snowflake_param(request: web.Request, name: str) -> int:
    """A snowflake from the URL; 404 when it is not a number."""
    try:
        return int(request.match_info[name])
    except ValueError:
        raise DiscordError(404, 0, f"404: Not Found ({name} is not a snowflake)") from None
