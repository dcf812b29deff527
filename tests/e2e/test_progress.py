"""A job's progress message, end to end: its place in the queue, the percent and a preview while it runs,
the result replacing it, Cancel (queued or running, refunded) and 🗑️ on a result."""

from __future__ import annotations

import itertools
import re
import threading
from pathlib import Path

import pytest

from quotas import JobStatus, LedgerKind
from tests.e2e.conftest import World, fake_queue, songe_inprocess
from tests.e2e.results_support import (
    SeeingEngine,
    accepted_job,
    button,
    imagine,
    progress_of,
    result_message,
    until,
)
from tests.support.fake_discord import FakeMessage

pytestmark = pytest.mark.e2e

WAITING = re.compile(r"Waiting to start — position (\d+) of (\d+), about \d")
PERCENT = re.compile(r"Generating .* (\d+)%")


def versions(message: FakeMessage) -> list[tuple[str, list[str]]]:
    """Every state a message went through: (content, attachment names), oldest first."""
    states = [(v.content, [a.filename for a in v.attachments]) for v in message.edits]
    return states + [(message.content, [a.filename for a in message.attachments])]


async def test_queued_jobs_show_their_place_in_line_and_wait_then_their_results(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine(seconds_per_batch=0.6)
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        server, channel = world.server, world.channel
        warm_up = await imagine(server, world.bob, channel, "teaches the queue how fast the GPU is")
        bot.queue.pause()
        jobs = []
        for user, prompt in ((world.alice, "first"), (world.alice, "second"), (world.bob, "third")):
            jobs.append(await accepted_job(await server.slash(user, channel, "imagine", prompt=prompt)))
        progress = [await server.wait_for_message(channel, progress_of(job)) for job in jobs]

        def places() -> list[tuple[int, int]] | None:
            found = [WAITING.search(m.content) for m in progress]
            return [(int(f[1]), int(f[2])) for f in found if f] if all(found) else None

        # Fair between users: bob's job goes before alice's second one, whose message is edited to say so.
        await server.wait_until(lambda: (p := places()) and max(p) == (3, 3), what="three places in line")
        assert sorted(position for position, _ in places() or []) == [1, 2, 3]
        # Two jobs ahead at about 0.6 s each: the wait shown is about a second, not zero.
        last = progress[[position for position, _ in places() or []].index(3)]
        assert re.search(r"about [1-9]\d* s", last.content), last.content
        assert len(engine.seen) == 1

        bot.queue.resume()
        for job in jobs:
            await result_message(server, channel, job)
        await server.wait_until(lambda: all(m.deleted for m in progress), what="the progress messages to go")
        assert len(server.messages(channel)) == 4 and warm_up in server.messages(channel)  # results only


async def test_a_running_job_shows_its_percent_and_a_preview_then_the_result_replaces_it(
    world: World, tmp_path: Path
) -> None:
    engine = SeeingEngine(seconds_per_step=0.4)
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine), SONGE_STEPS="8"):
        server, channel = world.server, world.channel
        job = await accepted_job(await server.slash(world.alice, channel, "imagine", prompt="a slow sunrise"))
        progress = await server.wait_for_message(channel, progress_of(job))
        result = await result_message(server, channel, job)
        await server.wait_until(lambda: progress.deleted, what="the result to replace the progress message")
        assert not result.deleted and server.messages(channel) == [result]
        states = versions(progress)
        running = [(int(found[1]), files) for content, files in states if (found := PERCENT.search(content))]
        assert any(0 < percent < 100 and files == ["preview.jpg"] for percent, files in running), states
        edits = server.requests("PATCH", rf"/channels/{channel.id}/messages/{progress.id}")
        assert len(edits) >= 2
        # The throttle (1.5 s) spaces the edits of one message; checked as a lower bound only.
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(edits)]
        assert min(gaps) >= 1.0, gaps


async def test_the_progress_throttle_never_holds_back_a_result(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        bot.jobs.edit_interval = 3600.0  # a progress edit at most every hour
        grid = await imagine(world.server, world.alice, world.channel, "no waiting")
        assert "U1" in grid.labels


async def test_cancel_while_queued_refunds_and_only_the_author_may(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        server, channel = world.server, world.channel
        before = (await bot.store.account(world.alice.id)).total_remaining
        bot.queue.pause()
        job = await accepted_job(await server.slash(world.alice, channel, "imagine", prompt="never mind"))
        progress = await server.wait_for_message(channel, progress_of(job))
        assert "Cancel" in progress.labels
        assert (await bot.store.account(world.alice.id)).total_remaining < before  # reserved

        refused = await (await server.click(world.bob, progress, button(progress, "cancel"))).original(timeout=10)
        assert refused.ephemeral and "Only the author" in refused.content
        answer = await (await server.click(world.alice, progress, button(progress, "cancel"))).original(timeout=10)
        assert answer.ephemeral and "Cancelling" in answer.content
        ended = await server.wait_for_message(channel, lambda m: m.id == progress.id and "Cancelled" in m.content)
        assert ended.custom_ids == [] and ended.attachments == []

        record = (await bot.store.recent_jobs(world.alice.id))[0]
        assert record.job_id.startswith(job) and record.status is JobStatus.CANCELLED
        entries = [e for e in await bot.store.ledger(world.alice.id) if e.job_id == record.job_id]
        assert {e.kind for e in entries} == {LedgerKind.RESERVE, LedgerKind.REFUND}
        assert sum(e.seconds for e in entries) == 0
        assert (await bot.store.account(world.alice.id)).total_remaining == before
        bot.queue.resume()
        await imagine(server, world.alice, channel, "a later job")  # the queue goes on; the cancelled job never ran
        assert all(not job_id.startswith(job) for job_id in engine.seen)


async def test_cancel_while_running_stops_the_job_and_refunds(world: World, tmp_path: Path) -> None:
    gate = threading.Event()
    engine = SeeingEngine(before_step=lambda step: gate.wait(30))
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        server, channel = world.server, world.channel
        before = (await bot.store.account(world.alice.id)).total_remaining
        try:
            job = await accepted_job(await server.slash(world.alice, channel, "imagine", prompt="stop me"))
            progress = await server.wait_for_message(
                channel, lambda m: progress_of(job)(m) and "Generating" in m.content
            )
            await server.click(world.alice, progress, button(progress, "cancel"))
            ended = await server.wait_for_message(channel, lambda m: m.id == progress.id and "Cancelled" in m.content)
            assert "refunded" in ended.content
        finally:
            gate.set()
        await until(lambda: not engine.running, "the engine to stop")
        assert engine.attempts and engine.batches == []  # the batch was interrupted, not finished
        record = (await bot.store.recent_jobs(world.alice.id))[0]
        assert record.status is JobStatus.CANCELLED
        kinds = [e.kind for e in await bot.store.ledger(world.alice.id) if e.job_id == record.job_id]
        assert LedgerKind.REFUND in kinds and LedgerKind.SETTLE not in kinds
        assert (await bot.store.account(world.alice.id)).total_remaining == before
        assert [m for m in server.messages(channel) if m.attachments] == []


async def test_only_the_author_can_delete_a_result(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(SeeingEngine())):
        server, channel = world.server, world.channel
        grid = await imagine(server, world.alice, channel, "a sandcastle")
        refused = await (await server.click(world.bob, grid, button(grid, "delete"))).original(timeout=10)
        assert refused.ephemeral and "Only the author" in refused.content and not grid.deleted
        done = await (await server.click(world.alice, grid, button(grid, "delete"))).original(timeout=10)
        assert done.ephemeral and "Deleted" in done.content
        assert grid.deleted and server.messages(channel) == []
