"""Results reach their author whatever happened meanwhile: an expired interaction token, a deleted channel,
a restart of the bot between the grid and a click on it. Each result is posted exactly once."""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from quotas import JobStatus, QuotaStore
from tests.e2e.conftest import World, fake_queue, songe_inprocess
from tests.e2e.results_support import (
    SeeingEngine,
    accepted_job,
    button,
    delivered,
    full_job_id,
    jobs_on,
    progress_of,
    result_message,
    size_of,
    until,
)

pytestmark = pytest.mark.e2e


async def test_a_job_that_outlives_its_interaction_token_is_still_posted_once(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        server, channel = world.server, world.channel
        bot.queue.pause()
        itx = await server.slash(world.alice, channel, "imagine", prompt="a long wait --seed 1")
        job = await accepted_job(itx)
        itx.expire()
        calls_before = len(server.calls)
        bot.queue.resume()

        result = await result_message(server, channel, job)
        assert not result.ephemeral and result.webhook_id is None and f"<@{world.alice.id}>" in result.content
        record = await delivered(bot.store, full_job_id(result))
        assert record.status is JobStatus.SUCCEEDED and record.message_id == result.id
        await server.wait_until(lambda: not any(progress_of(job)(m) for m in server.messages(channel)))
        assert [m for m in server.messages(channel) if any(j.startswith(job) for j in jobs_on(m))] == [result]
        assert not any(call.status >= 400 for call in server.calls[calls_before:])  # the dead token was not used


async def test_a_result_whose_channel_is_gone_goes_by_direct_message(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        server, channel = world.server, world.channel
        bot.queue.pause()
        job = await accepted_job(await server.slash(world.alice, channel, "imagine", prompt="a message in a bottle"))
        await server.wait_for_message(channel, progress_of(job))
        server.delete_channel(channel)
        bot.queue.resume()

        direct = await result_message(server, server.dm_channel(world.alice), job)
        assert "U1" in direct.labels and size_of(direct.attachments[0].data) == (128, 128)
        record = await delivered(bot.store, full_job_id(direct))
        assert record.message_id == direct.id
        assert record.charged_seconds > 0  # delivered, so charged as usual
        assert server.dm_messages(world.alice) == [direct]
        assert server.dm_messages(world.bob) == []

        # Its buttons work there for its author: U1, and a variation that comes back in the same conversation.
        single = await (await server.click(world.alice, direct, button(direct, "u", 1))).original(timeout=10)
        assert size_of(single.attachments[0].data) == (64, 64) and "Upscale (Subtle)" in single.labels
        varied = await accepted_job(await server.click(world.alice, direct, button(direct, "v", 2)))
        assert "V1" in (await result_message(server, server.dm_channel(world.alice), varied)).labels


async def test_buttons_survive_a_restart_of_the_bot(
    world: World, start_bot, tiny_model_dir: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server, channel = world.server, world.channel
    first = await start_bot(data_dir, SONGE_MODEL=str(tiny_model_dir))
    itx = await server.slash(world.alice, channel, "imagine", prompt="a lantern in the rain --seed 3")
    grid = await result_message(server, channel, await accepted_job(itx, timeout=30), timeout=120)
    assert await first.terminate() == 0

    second = await start_bot(data_dir, SONGE_MODEL=str(tiny_model_dir))
    click = await server.click(world.bob, grid, button(grid, "u", 2))
    single = await click.original(timeout=30)
    width, height = size_of(grid.attachments[0].data)
    assert size_of(single.attachments[0].data) == (width // 2, height // 2)
    with (
        Image.open(io.BytesIO(grid.attachments[0].data)) as whole,
        Image.open(io.BytesIO(single.attachments[0].data)) as one,
    ):
        second_tile = whole.convert("RGB").crop((width // 2, 0, width, height // 2))
        assert ImageChops.difference(second_tile, one.convert("RGB")).getbbox() is None  # image 2 exactly
    assert "Upscale (Subtle)" in single.labels
    # The restart delivered nothing twice: one grid, then the U2 image.
    assert [m for m in server.messages(channel) if full_job_id(grid) in jobs_on(m)] == [grid, single]
    assert await second.terminate() == 0

    store = await QuotaStore.open(data_dir / "songe.sqlite3")
    try:
        (record,) = await store.recent_jobs(world.alice.id)
        assert record.status is JobStatus.SUCCEEDED and record.delivered and record.message_id == grid.id
        assert await store.recent_jobs(world.bob.id) == []
    finally:
        await store.close()


async def test_a_result_posted_just_before_a_crash_is_not_posted_again_by_a_late_restart(
    world: World, tmp_path: Path
) -> None:
    data_dir, server, channel = tmp_path / "data", world.server, world.channel
    async with songe_inprocess(world, data_dir, queue_factory=fake_queue(SeeingEngine())) as bot:
        bot.queue.pause()
        job = await accepted_job(await server.slash(world.alice, channel, "imagine", prompt="a lighthouse --seed 4"))
        progress = await server.wait_for_message(channel, progress_of(job))
        bot.queue.resume()
        result = await result_message(server, channel, job)
        await delivered(bot.store, full_job_id(result))
    # What a crash between the post and its bookkeeping leaves behind: the result posted, the progress message
    # still there, the job not marked delivered; and a restart late enough that Discord has forgotten the nonce.
    with sqlite3.connect(data_dir / "songe.sqlite3") as conn:
        conn.execute(
            "UPDATE jobs SET delivered = 0, message_id = ? WHERE job_id = ?", (progress.id, full_job_id(result))
        )
    progress.deleted = False
    result.created_at -= dt.timedelta(minutes=10)

    async with songe_inprocess(world, data_dir, queue_factory=fake_queue(SeeingEngine())) as bot:
        record = await delivered(bot.store, full_job_id(result))
        assert record.message_id == result.id
        await until(lambda: progress.deleted, "the progress message to be removed")
        assert [m for m in server.messages(channel) if any(j.startswith(job) for j in jobs_on(m))] == [result]
