"""After a test's jobs: was every accepted job delivered once or refunded with notice, and does the ledger balance?

`await audit(server, database)` reads the jobs table and the ledger from the file (once the bot has nothing
left to do: `settled`) and the messages from the fake Discord, and lists every broken promise in plain words.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from quotas import QuotaStore
from tests.support.fake_discord import FakeDiscord, FakeMessage

CLOSED = ("succeeded", "failed", "cancelled")
UNPOSTABLE = "channel unreachable"  # the refund reason of a job whose progress message could not be posted
REFUND_WORDS = ("refunded", "remboursé")  # ended.failed and ended.cancelled, en and fr
ACCEPTED = re.compile(r"✅ \w+ `([0-9a-f]{8})`")  # imagine.accepted, en and fr
BUTTON = re.compile(r"songe:(?P<action>[a-z0-9]+):(?P<job>[0-9a-f]{32}):")


@dataclass
class Audit:
    """What the audit found: counts, and one line per problem (empty when every promise was kept)."""

    jobs: int = 0
    delivered: int = 0
    refunded: int = 0
    refused: int = 0  # refunded at once, before any progress message: the command's own reply said so
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    double_charges: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return self.lost + self.duplicates + self.double_charges + self.problems

    def summary(self) -> str:
        return (
            f"{self.jobs} jobs: {self.delivered} delivered, {self.refunded} refunded, {self.refused} refused; "
            f"lost {len(self.lost)}, duplicate posts {len(self.duplicates)}, double charges "
            f"{len(self.double_charges)}, other problems {len(self.problems)}"
        )


def bot_messages(server: FakeDiscord) -> list[FakeMessage]:
    """Every message the bot ever posted (deleted ones too), in channels and DMs, ephemeral ones left out."""
    bot = server.world.bot
    return [m for m in server.world.messages.values() if m.author is bot and not m.ephemeral]


class Posts:
    """The bot's messages by job: results (an attachment and the job's buttons) and live progress (Cancel)."""

    def __init__(self, messages: list[FakeMessage]) -> None:
        self.messages = messages
        self.results: dict[str, list[FakeMessage]] = defaultdict(list)
        self.offering_cancel: dict[str, list[FakeMessage]] = defaultdict(list)
        for message in messages:
            found = {(m["action"], m["job"]) for m in map(BUTTON.match, message.custom_ids) if m}
            for job_id in {job for action, job in found if action != "cancel"} if message.attachments else ():
                self.results[job_id].append(message)
            for job_id in {job for action, job in found if action == "cancel"}:
                if not (message.deleted or message.channel.deleted):
                    self.offering_cancel[job_id].append(message)

    def told_of_refund(self, message_id: int | None, prompt: str) -> bool:
        """The progress message now says refunded, or a message (a DM) about this prompt does."""
        return any(
            not m.deleted
            and any(word in m.content for word in REFUND_WORDS)
            and (m.id == message_id or f"**{prompt}**" in m.content)
            for m in self.messages
        )


def accepted_job_prefixes(server: FakeDiscord) -> set[str]:
    """The job ids (first 8 characters) that the bot told users it queued, from every answered interaction."""
    prefixes: set[str] = set()
    for itx in server.interactions:
        message = server.world.messages.get(itx.original_id) if itx.original_id else None
        if message is not None:
            prefixes.update(ACCEPTED.findall(message.content))
    return prefixes


async def audit(server: FakeDiscord, database: Path) -> Audit:
    """Check every job of `database` against what the fake Discord shows; see `Audit`."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        jobs = connection.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()
        moves = Counter(tuple(row) for row in connection.execute("SELECT job_id, kind FROM ledger WHERE job_id"))
    finally:
        connection.close()
    store = await QuotaStore.open(database)
    try:
        unbalanced = await store.verify()
    finally:
        await store.close()
    posts = Posts(bot_messages(server))
    accepted = accepted_job_prefixes(server)
    found = Audit(jobs=len(jobs))
    found.lost += [f"job {prefix}: its author was told it was queued, but it is not in the database"
                   for prefix in accepted - {job["job_id"][:8] for job in jobs}]  # fmt: skip
    found.problems += [f"user {user}: balance differs from the sum of the ledger" for user in unbalanced]
    for job in jobs:
        _check(found, job, moves, posts, accepted)
    return found


def _check(found: Audit, job: sqlite3.Row, moves: Counter[tuple[str, str]], posts: Posts, accepted: set[str]) -> None:
    job_id, status = job["job_id"], job["status"]
    name = f"job {job_id[:8]} ({job['kind']}, {status})"
    settles, refunds = moves[(job_id, "settle")], moves[(job_id, "refund")]
    if settles > 1 or refunds > 1 or (settles and refunds):
        found.double_charges.append(f"{name}: settled {settles} times, refunded {refunds} times")
    if posts.offering_cancel[job_id] and status in CLOSED:
        found.problems.append(f"{name}: {len(posts.offering_cancel[job_id])} progress message(s) still offer Cancel")
    results = posts.results[job_id]
    if status not in CLOSED:
        found.lost.append(f"{name}: never finished")
    elif status == "succeeded":
        if len(results) > 1:
            found.duplicates.append(f"{name}: posted {len(results)} times")
        elif not results or not job["delivered"]:
            found.lost.append(f"{name}: settled but never posted (delivered={job['delivered']})")
        else:
            found.delivered += 1
    else:
        if results:
            found.problems.append(f"{name}: refunded, yet its images were posted")
        if job["refunded_ms"] != job["reserved_plan_ms"] + job["reserved_extra_ms"]:
            found.problems.append(f"{name}: refunded {job['refunded_ms']} ms of {job['reserved_plan_ms']} ms")
        prompt = str(json.loads(job["request"]).get("display_prompt", ""))
        if job["message_id"] is None and job["failure"] == UNPOSTABLE and job_id[:8] not in accepted:
            found.refused += 1
        elif posts.told_of_refund(job["message_id"], prompt):
            found.refunded += 1
        else:
            found.lost.append(f"{name}: refunded, but its author was never told")


async def poll(query: str, database: Path, params: tuple[object, ...] = (), *, timeout: float = 60.0) -> None:
    """Wait until `query` (SELECT count(*) ...) on the bot's database counts at least one row.

    The bot's own state, seen from outside: a bounded poll of its database file (WAL readers never block it).
    """
    deadline = time.monotonic() + timeout
    while True:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            (count,) = connection.execute(query, params).fetchone()
        finally:
            connection.close()
        if count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {query} {params}")
        await asyncio.sleep(0.02)


async def settled(database: Path, *, timeout: float = 60.0) -> None:
    """Every job closed, every success posted: the bot has nothing left to do."""
    busy = "status IN ('queued', 'running') OR (status = 'succeeded' AND delivered = 0)"
    await poll(f"SELECT count(*) = 0 FROM jobs WHERE {busy}", database, timeout=timeout)
