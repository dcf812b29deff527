"""Steps shared by the account, admin, settings, moderation and locale end-to-end tests.

A `GpuClock` gives the fake engine a fixed cost: the worker measures GPU time on the same clock the engine
"sleeps" on, so every batch costs exactly `seconds` and charges can be compared exactly.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pipelines.fake import FakeEngine
from quotas import JobRecord
from tests.e2e.conftest import QueueFactory, World, fake_queue
from tests.support.fake_discord import FakeChannel, FakeInteraction, FakeMessage, FakeUser

T = TypeVar("T")
JOB_PREFIX = re.compile(r"`([0-9a-f]{8})`")
COST = 6.0
"""GPU seconds every batch of a `fixed_cost_queue` takes."""


class GpuClock:
    """A monotonic clock that only the fake engine's `sleep` moves: GPU time becomes exact."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def fixed_cost_queue(seconds: float = COST) -> tuple[FakeEngine, QueueFactory]:
    """A fake engine whose every batch costs exactly `seconds` of GPU time, and the queue factory running it."""
    clock = GpuClock()
    engine = FakeEngine(seconds_per_batch=seconds, sleep=clock.sleep)
    return engine, fake_queue(engine, clock=clock)


async def answer(itx: FakeInteraction, timeout: float = 10.0) -> FakeMessage:
    """The bot's final (not "thinking...") ephemeral answer to `itx`."""
    message = await itx.original(timeout)
    assert message.ephemeral, f"expected an ephemeral answer, got {message!r}"
    return message


async def slash_answer(
    world: World, user: FakeUser, command: str, /, *path: str, where: FakeChannel | None = None, **values: Any
) -> str:
    """Run a slash command in `#art` (or `where`) and return the text of its ephemeral answer."""
    itx = await world.server.slash(user, where or world.channel, command, *path, **values)
    return (await answer(itx)).content


def job_prefix(accepted: FakeMessage) -> str:
    """The 8-character job id an acceptance names."""
    found = JOB_PREFIX.search(accepted.content)
    assert found, f"no job id in {accepted.content!r}"
    return found[1]


def job_id_of(message: FakeMessage) -> str:
    """The full job id of a Songe result or progress message, read from its buttons."""
    for custom_id in message.custom_ids:
        parts = custom_id.split(":")
        if len(parts) == 4 and parts[0] == "songe" and parts[1] not in {"delete"}:
            return parts[2]
    raise AssertionError(f"no Songe button on {message!r}")


def button(message: FakeMessage, label: str) -> str:
    """The custom id of the button labelled `label`."""
    for component in message.walk_components():
        if component.get("type") == 2 and component.get("label") == label:
            return str(component["custom_id"])
    raise AssertionError(f"no button {label!r} on {message!r}; labels: {message.labels}")


def select(message: FakeMessage, placeholder: str) -> str:
    """The custom id of the select menu showing `placeholder`."""
    for component in message.walk_components():
        if component.get("type") == 3 and component.get("placeholder") == placeholder:
            return str(component["custom_id"])
    raise AssertionError(f"no select {placeholder!r} on {message!r}")


@dataclass
class Ran:
    """An /imagine that was accepted and delivered."""

    accepted: FakeMessage
    grid: FakeMessage
    job_id: str


async def result_of(
    world: World, prefix: str, *, channel: FakeChannel | None = None, timeout: float = 20.0
) -> FakeMessage:
    """The delivered result (image and buttons) of the job whose id starts with `prefix`."""

    def delivered(message: FakeMessage) -> bool:
        ids = [cid.split(":") for cid in message.custom_ids]
        return bool(message.attachments) and any(
            len(parts) == 4 and parts[1] in {"u", "ups"} and parts[2].startswith(prefix) for parts in ids
        )

    return await world.server.wait_for_message(channel or world.channel, delivered, timeout=timeout)


async def imagine(
    world: World, user: FakeUser, prompt: str, *, channel: FakeChannel | None = None, locale: str | None = None
) -> Ran:
    """/imagine `prompt`, accepted, then delivered; fails with the refusal's text otherwise."""
    itx = await world.server.slash(user, channel or world.channel, "imagine", prompt=prompt, locale=locale)
    accepted = await answer(itx)
    assert JOB_PREFIX.search(accepted.content), f"/imagine {prompt!r} was not accepted: {accepted.content}"
    prefix = job_prefix(accepted)
    grid = await result_of(world, prefix, channel=channel)
    return Ran(accepted, grid, job_id_of(grid))


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = 10.0, what: str = "it") -> T:
    """Poll something only the bot knows (the store) until it holds; bounded, for state with no Discord trace."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def job_record(bot: Any, job_id: str) -> JobRecord:
    record = await bot.store.job(job_id)
    assert record is not None, f"no job {job_id} in the store"
    return record


async def job_id_from_prefix(bot: Any, user_id: int, prefix: str) -> str:
    """The full id of the user's job whose id starts with `prefix` (as acceptances show it)."""
    matches = [r.job_id for r in await bot.store.recent_jobs(user_id, limit=100) if r.job_id.startswith(prefix)]
    assert len(matches) == 1, f"{len(matches)} jobs of user {user_id} start with {prefix}"
    return matches[0]
