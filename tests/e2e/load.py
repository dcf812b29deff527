"""A storm of /imagine: many users each sending several at once, and what the fake measured of the answers.

Shared by `tests/e2e/test_load.py` and `bench/bench_load.py`. The bot runs in its own process: in this one
it would share the event loop (and the core) with the fake Discord, which answers its thousands of requests,
and the deferral latency measured would be mostly the fake's.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass

from tests.support.fake_discord import FakeChannel, FakeDiscord, FakeInteraction, FakeUser

ACCEPTED = re.compile(r"^✅ ")
LIMIT_REFUSAL = "jobs running or waiting in this mode, the most your plan allows"


async def admin(server: FakeDiscord, operator: FakeUser, channel: FakeChannel, subcommand: str) -> None:
    """An operator's /admin command (`pause` before the storm, so that no job ends and frees a slot; `resume`)."""
    itx = await server.slash(operator, channel, "admin", subcommand)
    await itx.original(timeout=10)


def add_users(server: FakeDiscord, count: int) -> list[FakeUser]:
    return [server.add_user(f"load{n:03}") for n in range(count)]


async def storm(
    server: FakeDiscord, channel: FakeChannel, users: list[FakeUser], per_user: int
) -> list[FakeInteraction]:
    """Each user sends `per_user` /imagine, all dispatched before any answer is awaited (round by round)."""
    return [
        await server.slash(user, channel, "imagine", prompt=f"storm {user.name} {n}")
        for n in range(per_user)
        for user in users
    ]


async def answered(server: FakeDiscord, interactions: list[FakeInteraction], *, timeout: float = 120.0) -> None:
    """Wait until every interaction's original response is final (accepted or refused)."""

    def done() -> bool:
        messages = server.world.messages
        return all(itx.original_id is not None and not messages[itx.original_id].loading for itx in interactions)

    await server.wait_until(done, timeout=timeout, what="every /imagine to be answered")


@dataclass(frozen=True)
class StormReport:
    """Deferral latencies (seconds, as the fake measured them) and who was admitted or refused."""

    latencies: list[float]
    admitted: Counter[int]
    refused: Counter[int]
    other: list[str]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    @property
    def worst(self) -> float:
        return max(self.latencies)


def report(server: FakeDiscord, interactions: list[FakeInteraction]) -> StormReport:
    latencies, admitted, refused, other = [], Counter[int](), Counter[int](), []
    for itx in interactions:
        answer = itx.answered
        latencies.append(float("inf") if answer is None or answer.elapsed is None else answer.elapsed)
        content = server.world.messages[itx.original_id].content if itx.original_id else ""
        if ACCEPTED.match(content):
            admitted[itx.user.id] += 1
        elif LIMIT_REFUSAL in content:
            refused[itx.user.id] += 1
        else:
            other.append(f"{itx.user.name}: {content!r}")
    return StormReport(latencies, admitted, refused, other)
