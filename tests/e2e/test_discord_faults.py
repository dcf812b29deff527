"""Issue 6: Discord misbehaves (rate limits, server errors, a dropped gateway, things deleted under the bot's feet)
and still no job is lost, none is posted twice, none is charged twice."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.app import SongeBot
from pipelines.fake import FakeEngine
from tests.e2e.audit import Audit, audit, bot_messages, settled
from tests.e2e.conftest import World, fake_queue, songe_inprocess
from tests.e2e.gate import Gate
from tests.support.fake_discord import FakeMessage

pytestmark = pytest.mark.e2e

DOOMED = "a doomed lighthouse"  # the fake engine refuses it: that job ends refunded
CREATE = r"/channels/\d+/messages"
EDIT = r"/channels/\d+/messages/\d+"
CALLBACK = r"/interactions/\d+/[^/]+/callback"
ORIGINAL = r"/webhooks/\d+/[^/]+/messages/@original"


@pytest.fixture
async def gated(world: World, tmp_path: Path) -> AsyncIterator[tuple[SongeBot, Gate]]:
    gate = Gate()  # with one job a batch, jobs run in the order they were sent (each from another user)
    engine = FakeEngine(fail_prompts=[DOOMED], before_step=gate)
    queue = fake_queue(engine)
    async with songe_inprocess(world, tmp_path / "data", queue_factory=queue, SONGE_MAX_BATCH="1") as bot:
        yield bot, gate


def progress_of(world: World, prompt: str) -> FakeMessage | None:
    """The live progress message of the job with this prompt (it offers Cancel)."""
    for message in world.server.messages(world.channel):
        if f"**{prompt}**" in message.content and any(c.startswith("songe:cancel:") for c in message.custom_ids):
            return message
    return None


async def start_both(world: World, gate: Gate) -> tuple[FakeMessage, FakeMessage]:
    """Alice's job running (held at the gate), Bob's doomed job waiting behind it; their progress messages."""
    server, channel = world.server, world.channel
    await server.slash(world.alice, channel, "imagine", prompt="a fox in the rain")
    await server.wait_until(gate.reached.is_set, timeout=10, what="the first job to start")
    await server.slash(world.bob, channel, "imagine", prompt=DOOMED)
    fox = await server.wait_until(lambda: progress_of(world, "a fox in the rain"), timeout=10, what="progress")
    doomed = await server.wait_until(lambda: progress_of(world, DOOMED), timeout=10, what="progress")
    return fox, doomed


def is_grid(message: FakeMessage) -> bool:
    return bool(message.attachments) and "U1" in message.labels


def refund_notice(prompt: str) -> Callable[[FakeMessage], bool]:
    return lambda m: f"**{prompt}**" in m.content and "refunded" in m.content


async def finish(world: World, bot: SongeBot) -> Audit:
    """Wait until the bot has nothing left to do, then audit every job."""
    await settled(bot.settings.database_path)
    found = await audit(world.server, bot.settings.database_path)
    assert not found.failures, "\n".join(found.failures)
    return found


@pytest.mark.parametrize(
    ("method", "path", "status", "count"),
    [
        pytest.param("POST", CREATE, 429, 2, id="message-create-429"),
        pytest.param("POST", CREATE, 500, 1, id="message-create-500"),
        pytest.param("PATCH", EDIT, 429, 3, id="message-edit-429"),
        pytest.param("PATCH", EDIT, 500, 1, id="message-edit-500"),
        pytest.param("POST", CALLBACK, 429, 2, id="interaction-callback-429"),
        pytest.param("PATCH", ORIGINAL, 429, 2, id="webhook-original-429"),
        pytest.param("PATCH", ORIGINAL, 500, 1, id="webhook-original-500"),
    ],
)
async def test_rate_limits_and_server_errors_are_retried_and_each_job_ends_once(
    world: World, gated: tuple[SongeBot, Gate], method: str, path: str, status: int, count: int
) -> None:
    bot, gate = gated
    server, channel = world.server, world.channel
    fault = server.fail_next(method, path, status=status, count=count, retry_after=0.25)
    fox = await server.slash(world.alice, channel, "imagine", prompt="a fox in the rain")
    doomed = await server.slash(world.bob, channel, "imagine", prompt=DOOMED)
    gate.opened.set()

    grid = await server.wait_for_message(channel, is_grid, timeout=30)
    notice = await server.wait_for_message(channel, refund_notice(DOOMED), timeout=30)
    for itx in (fox, doomed):
        assert (await itx.response(timeout=10)).elapsed < 3.0
        assert "✅" in (await itx.original(timeout=10)).content
    assert fault.count == 0, "every injected failure was met"
    assert "a fox in the rain" in grid.content and notice.id != grid.id
    found = await finish(world, bot)
    assert (found.jobs, found.delivered, found.refunded) == (2, 1, 1)


async def test_a_result_post_that_fails_outright_is_posted_later_once(
    world: World, gated: tuple[SongeBot, Gate]
) -> None:
    bot, gate = gated
    server, channel = world.server, world.channel
    await server.slash(world.alice, channel, "imagine", prompt="a fox in the rain")
    await server.wait_until(gate.reached.is_set, timeout=10, what="the job to start")
    fault = server.fail_next("POST", CREATE, status=503)  # discord.py does not retry a 503: the post fails
    gate.opened.set()
    await server.wait_for_message(channel, is_grid, timeout=30)
    assert fault.count == 0
    found = await finish(world, bot)
    assert (found.jobs, found.delivered) == (1, 1)


async def test_a_progress_post_that_fails_outright_refunds_the_job_and_says_so(
    world: World, gated: tuple[SongeBot, Gate]
) -> None:
    bot, gate = gated
    server, channel = world.server, world.channel
    gate.opened.set()
    fault = server.fail_next("POST", CREATE, status=503)
    itx = await server.slash(world.alice, channel, "imagine", prompt="a fox in the rain")
    answer = await itx.original(timeout=10)
    assert fault.count == 0
    assert answer.ephemeral and "Nothing was charged" in answer.content
    found = await finish(world, bot)
    assert (found.jobs, found.refused, found.delivered) == (1, 1, 0)
    assert (await bot.store.account(world.alice.id)).total_remaining == bot.settings.free_seconds
    assert not any(m.attachments for m in bot_messages(server))


async def test_a_dropped_gateway_in_the_middle_of_a_job_loses_nothing(
    world: World, gated: tuple[SongeBot, Gate]
) -> None:
    bot, gate = gated
    server, channel = world.server, world.channel
    await server.slash(world.alice, channel, "imagine", prompt="a fox in the rain")
    await server.wait_until(gate.reached.is_set, timeout=10, what="the job to start")
    resumes = server.resume_count
    await server.drop_gateway(code=None)  # TCP cut, as a 1006
    gate.opened.set()
    await server.wait_for_message(channel, is_grid, timeout=30)
    await server.wait_until(lambda: server.resume_count > resumes, timeout=30, what="the bot to resume")
    late = await server.slash(world.bob, channel, "imagine", prompt="an owl after the storm")
    assert "✅" in (await late.original(timeout=10)).content
    await server.wait_for_message(channel, lambda m: is_grid(m) and "an owl" in m.content, timeout=30)
    found = await finish(world, bot)
    assert (found.jobs, found.delivered) == (2, 2)


async def test_a_channel_deleted_before_delivery_sends_the_result_and_the_refund_notice_by_dm(
    world: World, gated: tuple[SongeBot, Gate]
) -> None:
    bot, gate = gated
    server, channel = world.server, world.channel
    await start_both(world, gate)
    server.delete_channel(channel)
    gate.opened.set()
    await server.wait_until(lambda: any(is_grid(m) for m in server.dm_messages(world.alice)), timeout=30, what="a DM")
    await server.wait_until(
        lambda: any(refund_notice(DOOMED)(m) for m in server.dm_messages(world.bob)),
        timeout=30,
        what="the refund notice by DM",
    )
    found = await finish(world, bot)
    assert (found.jobs, found.delivered, found.refunded) == (2, 1, 1)


async def test_a_progress_message_deleted_before_delivery_still_gets_one_result(
    world: World, gated: tuple[SongeBot, Gate]
) -> None:
    bot, gate = gated
    server, channel = world.server, world.channel
    fox, doomed = await start_both(world, gate)
    server.delete_message(fox)
    server.delete_message(doomed)
    gate.opened.set()
    await server.wait_for_message(channel, is_grid, timeout=30)
    await server.wait_until(
        lambda: any(refund_notice(DOOMED)(m) for m in server.dm_messages(world.bob)),
        timeout=30,
        what="the refund notice by DM",
    )
    found = await finish(world, bot)
    assert (found.jobs, found.delivered, found.refunded) == (2, 1, 1)
