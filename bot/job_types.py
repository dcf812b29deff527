"""The values of a job's life that the cogs, the presenter and the job service share."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pipelines import codec
from pipelines.types import FailureKind, GenerationRequest
from quotas import JobRecord, Mode, Reservation


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class JobSpec:
    """What a command or button asks for, before quotas have a say."""

    kind: str
    request: GenerationRequest
    channel_id: int
    guild_id: int | None = None
    mode: Mode | None = None
    parent_job_id: str | None = None
    image_index: int | None = None
    account_created_at: datetime | None = None
    locale: str | None = None
    display_prompt: str = ""
    parameters: str = ""
    private: bool = False


@dataclass(frozen=True)
class Envelope:
    """What the jobs table keeps of a job beyond the store's own columns (opaque JSON to `quotas`)."""

    request: GenerationRequest
    locale: str | None
    display_prompt: str
    parameters: str
    private: bool = False
    truncated: bool = False

    def dumps(self) -> str:
        doc = {
            "request": codec.to_dict(self.request),
            "locale": self.locale,
            "display_prompt": self.display_prompt,
            "parameters": self.parameters,
            "private": self.private,
        }
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> Envelope:
        doc = json.loads(text)
        return cls(
            request=codec.from_dict(GenerationRequest, doc["request"]),
            locale=doc.get("locale"),
            display_prompt=doc.get("display_prompt", ""),
            parameters=doc.get("parameters", ""),
            private=bool(doc.get("private", False)),
        )


@dataclass(frozen=True)
class StoredResult:
    """A finished job's images as saved under the data directory."""

    files: tuple[str, ...]
    seeds: tuple[int, ...]
    width: int
    height: int
    nsfw: tuple[bool, ...]
    gpu_seconds: float
    truncated: bool = False

    def dumps(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> StoredResult:
        doc = json.loads(text)
        return cls(
            files=tuple(doc["files"]),
            seeds=tuple(doc["seeds"]),
            width=int(doc["width"]),
            height=int(doc["height"]),
            nsfw=tuple(doc.get("nsfw", ())),
            gpu_seconds=float(doc.get("gpu_seconds", 0.0)),
            truncated=bool(doc.get("truncated", False)),
        )


@dataclass(frozen=True)
class Job:
    """A job as the presenter sees it: the store's record plus the decoded envelope."""

    record: JobRecord
    envelope: Envelope

    @property
    def job_id(self) -> str:
        return self.record.job_id

    @property
    def user_id(self) -> int:
        return self.record.user_id


@dataclass(frozen=True)
class Waiting:
    position: int
    total: int
    eta_seconds: float


@dataclass(frozen=True)
class Running:
    percent: int
    preview: bytes | None = None


ProgressState = Waiting | Running


@dataclass(frozen=True)
class Accepted:
    """The answer to a submitted job: its id, the reservation and where it waits."""

    job_id: str
    reservation: Reservation
    message_id: int | None


class DeliveryError(Exception):
    """The presenter could not post anything for a job (channel and DM both unreachable)."""


class Presenter(Protocol):
    """The Discord side of a job's life: progress message, result, notices."""

    async def post_progress(self, job: Job, state: ProgressState) -> int | None:
        """Post the message that will show progress; returns its id (None when private)."""
        ...

    async def edit_progress(self, job: Job, state: ProgressState) -> None: ...

    async def deliver(self, job: Job, result: StoredResult, images: list[bytes]) -> int:
        """Post the result (replacing the progress message); returns the result message id."""
        ...

    async def posted_result(self, job: Job) -> int | None:
        """The id of the job's result message if a run before a crash already posted it (the progress message
        is then removed as after a post), else None."""
        ...

    async def notify_ended(self, job: Job, *, refunded: float, kind: FailureKind | None, message: str) -> None:
        """Tell the author their job failed or was cancelled, and that it was refunded."""
        ...


class QueueRefused(Exception):
    """The generation queue would not take the job (broker outage, shutting down)."""
