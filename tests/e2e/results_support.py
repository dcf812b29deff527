"""Helpers for the end-to-end tests of results, buttons, progress and delivery.

A click or command that queues a job answers ephemerally with "Job `1a2b3c4d` queued"; the job's
result is the message whose buttons carry that job's id. These helpers find both, and a
`SeeingEngine` keeps every request the fake GPU ran so a test can check operations, boxes and strengths.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from PIL import Image

from pipelines.engine import EngineOutput, StepCallback
from pipelines.fake import FakeEngine
from pipelines.types import GenerationRequest
from quotas import JobRecord, QuotaStore
from tests.support.fake_discord import FakeChannel, FakeDiscord, FakeInteraction, FakeMessage, FakeUser
from tests.support.fake_discord.messages import walk_components

ACCEPTED = re.compile(r"Job `([0-9a-f]{8})` queued")
TEXT_INPUT = 4


class SeeingEngine(FakeEngine):
    """A `FakeEngine` that keeps every request it ran, by job id; each batch costs 50 ms of "GPU" time by
    default, so that every job reserves and is charged something the ledger shows."""

    def __init__(self, *, seconds_per_batch: float = 0.05, **kwargs: Any) -> None:
        super().__init__(seconds_per_batch=seconds_per_batch, **kwargs)
        self.seen: dict[str, GenerationRequest] = {}

    def run(self, batch: Sequence[GenerationRequest], on_step: StepCallback) -> list[EngineOutput]:
        self.seen.update((request.job_id, request) for request in batch)
        return super().run(batch, on_step)


async def accepted_job(itx: FakeInteraction, timeout: float = 10.0) -> str:
    """The 8-character job id of the ephemeral "queued" answer to `itx`."""
    answer = await itx.original(timeout=timeout)
    found = ACCEPTED.search(answer.content)
    assert found and answer.ephemeral, f"not an accepted job: {answer.content!r}"
    return found[1]


def jobs_on(message: FakeMessage) -> set[str]:
    """The job ids a message's Songe buttons carry (a progress message's Cancel left out)."""
    return {cid.split(":")[2] for cid in message.custom_ids if cid.startswith("songe:") and ":cancel:" not in cid}


async def result_message(
    server: FakeDiscord, channel: FakeChannel | None, job: str, *, timeout: float = 30.0
) -> FakeMessage:
    """The posted result (an image with buttons) of the job whose id starts with `job`."""
    return await server.wait_for_message(
        channel,
        lambda m: bool(m.attachments) and any(j.startswith(job) for j in jobs_on(m)) and not m.ephemeral,
        timeout=timeout,
    )


def progress_of(job: str) -> Callable[[FakeMessage], bool]:
    """A message predicate: the progress message (the one with Cancel) of the job whose id starts with `job`."""
    return lambda m: any(cid.startswith("songe:cancel:") and cid.split(":")[2].startswith(job) for cid in m.custom_ids)


def button(message: FakeMessage, action: str, index: int | None = None) -> str:
    """The custom id of the button `action` (and image `index`) on a Songe message."""
    for cid in message.custom_ids:
        parts = cid.split(":")
        if parts[0] == "songe" and parts[1] == action and (index is None or parts[3] == str(index)):
            return cid
    raise AssertionError(f"no {action} button (index {index}) on message {message.id}: {message.custom_ids}")


def full_job_id(message: FakeMessage) -> str:
    """The one job id the buttons of a result message carry."""
    (job_id,) = jobs_on(message)
    return job_id


async def modal_inputs(itx: FakeInteraction) -> list[str]:
    """The custom ids of the text inputs of the modal the bot opened in answer to `itx`, in order."""
    await itx.response(timeout=10)
    assert itx.modal is not None, f"{itx!r} was answered with {itx.answered}, not a modal"
    return [c["custom_id"] for c in walk_components(itx.modal["components"]) if c.get("type") == TEXT_INPUT]


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def colour_at(data: bytes, x: int, y: int) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").getpixel((x, y))  # type: ignore[return-value]


def quadrant_colours(grid: bytes) -> list[tuple[int, int, int]]:
    """The colour at the centre of each image of a 2x2 grid, in reading order."""
    width, height = size_of(grid)
    return [colour_at(grid, (2 * (i % 2) + 1) * width // 4, (2 * (i // 2) + 1) * height // 4) for i in range(4)]


async def ledger_jobs(store: QuotaStore, user: FakeUser) -> set[str]:
    """The ids of the jobs a user's ledger charged or refunded."""
    return {entry.job_id for entry in await store.ledger(user.id, limit=500) if entry.job_id is not None}


async def imagine(server: FakeDiscord, user: FakeUser, channel: FakeChannel, prompt: str) -> FakeMessage:
    """`/imagine prompt` and the grid it produces."""
    itx = await server.slash(user, channel, "imagine", prompt=prompt)
    return await result_message(server, channel, await accepted_job(itx))


async def until(condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Poll something only the bot knows (its store, its GPU thread) a bounded number of times."""
    for _ in range(int(timeout / 0.02)):
        result = condition()
        if await result if isinstance(result, Awaitable) else result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def delivered(store: QuotaStore, job_id: str) -> JobRecord:
    """The job's record once the bot has marked its result delivered."""

    async def check() -> bool:
        record = await store.job(job_id)
        return record is not None and record.delivered

    await until(check, f"job {job_id} to be marked delivered")
    record = await store.job(job_id)
    assert record is not None
    return record
