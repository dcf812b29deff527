"""Banned words through Discord: refused before anything is reserved, however disguised; appeals to the operators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.app import SongeBot
from bot.job_types import Envelope
from quotas import JobStatus
from tests.e2e.account_support import answer, button, fixed_cost_queue, job_id_of, job_record
from tests.e2e.conftest import World, has_buttons, image_size, songe_inprocess
from tests.support.fake_discord import FakeChannel, FakeMessage

pytestmark = pytest.mark.e2e

BANNED = "# one entry a line\nnsfw\nnude\n"


@asynccontextmanager
async def moderated(world: World, tmp_path: Path) -> AsyncIterator[tuple[SongeBot, FakeChannel]]:
    """Songe with a banned-words file and an appeals channel."""
    words = tmp_path / "banned.txt"
    words.write_text(BANNED, encoding="utf-8")
    appeals = world.server.add_channel(world.guild, "appeals")
    async with songe_inprocess(
        world,
        tmp_path / "data",
        queue_factory=fixed_cost_queue()[1],
        SONGE_BANNED_WORDS=str(words),
        SONGE_APPEAL_CHANNEL_ID=str(appeals.id),
    ) as bot:
        yield bot, appeals


async def _refused(world: World, prompt: str) -> FakeMessage:
    itx = await world.server.slash(world.alice, world.channel, "imagine", prompt=prompt)
    refusal = await answer(itx)
    assert "blocked word" in refusal.content, refusal.content
    return refusal


@pytest.mark.parametrize(
    ("prompt", "word"),
    [
        ("an nsfw poster of a cat", "nsfw"),
        ("an NSFW poster of a cat", "nsfw"),
        ("a nüde statue in a park", "nude"),
        ("a nudе statue in a park", "nude"),  # Cyrillic е
        ("an nѕfw poster of a cat", "nsfw"),  # Cyrillic ѕ
        ("an n.s.f.w poster of a cat", "nsfw"),
        ("an n s f w poster of a cat", "nsfw"),
        ("a nud3 statue in a park", "nude"),
        ("an n5fw poster of a cat", "nsfw"),
        ("a {cat, nude} statue", "nude"),
        ("a statue --no nsfw", "nsfw"),
    ],
)
async def test_a_banned_word_is_refused_before_anything_is_reserved(
    world: World, tmp_path: Path, prompt: str, word: str
) -> None:
    async with moderated(world, tmp_path) as (bot, _appeals):
        refusal = await _refused(world, prompt)
        assert f"`{word}`" in refusal.content and "Appeal" in refusal.labels
        assert await bot.store.ledger(world.alice.id) == []
        assert await bot.store.recent_jobs(world.alice.id) == []
        assert world.server.messages(world.channel) == []


async def test_words_that_only_look_close_are_not_refused(world: World, tmp_path: Path) -> None:
    async with moderated(world, tmp_path):
        itx = await world.server.slash(world.alice, world.channel, "imagine", prompt="a nudibranch and a snowfall")
        assert "queued" in (await answer(itx)).content


async def test_an_appeal_reaches_the_operators_and_allow_runs_the_job_for_its_author(
    world: World, tmp_path: Path
) -> None:
    server, alice, operator = world.server, world.alice, world.operator
    async with moderated(world, tmp_path) as (bot, appeals):
        await bot.store.account(alice.id)
        ledger_before = await bot.store.ledger(alice.id)
        refusal = await _refused(world, "an nsfw poster of a cat --ar 16:9 --no dogs")
        assert await bot.store.ledger(alice.id) == ledger_before

        appeal = await server.click(alice, refusal, button(refusal, "Appeal"))
        await appeal.response()
        await server.wait_until(lambda: "sent to the operators" in refusal.content, what="the appeal to be sent")
        request = await server.wait_for_message(appeals, lambda m: "Allow" in m.labels)
        assert f"<@{alice.id}>" in request.content and "`nsfw`" in request.content
        assert "an nsfw poster of a cat --ar 16:9 --no dogs" in request.content

        refused = await server.click(world.admin, request, button(request, "Allow"))
        assert "Only the bot's operators" in (await answer(refused)).content
        assert await bot.store.recent_jobs(alice.id) == []

        allowed = await server.click(operator, request, button(request, "Allow"))
        assert "Allowed and queued" in (await answer(allowed)).content
        grid = await server.wait_for_message(world.channel, has_buttons("U1"), timeout=20)
        assert f"<@{alice.id}>" in grid.content
        width, height = image_size(grid.attachments[0].data)
        assert width > height
        record = await job_record(bot, job_id_of(grid))
        assert record.user_id == alice.id and record.status is JobStatus.SUCCEEDED and record.charged_seconds > 0
        sent = Envelope.loads(record.request).request
        assert (sent.prompt, sent.negative_prompt) == ("an nsfw poster of a cat", "dogs")
        assert (await bot.store.account(alice.id)).lifetime_images == 4
        assert (await bot.store.account(operator.id)).lifetime_images == 0
        assert f"Allowed by <@{operator.id}>" in request.content and request.custom_ids == []


async def test_a_rejected_appeal_runs_nothing(world: World, tmp_path: Path) -> None:
    server = world.server
    async with moderated(world, tmp_path) as (bot, appeals):
        refusal = await _refused(world, "a nude statue in a park")
        await (await server.click(world.alice, refusal, button(refusal, "Appeal"))).response()
        request = await server.wait_for_message(appeals, lambda m: "Reject" in m.labels)
        rejected = await server.click(world.operator, request, button(request, "Reject"))
        assert "Appeal rejected" in (await answer(rejected)).content
        assert f"Rejected by <@{world.operator.id}>" in request.content and request.custom_ids == []
        assert await bot.store.recent_jobs(world.alice.id) == []


async def test_an_appeal_allowed_twice_runs_and_charges_once(world: World, tmp_path: Path) -> None:
    server, alice, operator = world.server, world.alice, world.operator
    async with moderated(world, tmp_path) as (bot, appeals):
        refusal = await _refused(world, "an nsfw poster of a fox")
        await (await server.click(alice, refusal, button(refusal, "Appeal"))).response()
        request = await server.wait_for_message(appeals, lambda m: "Allow" in m.labels)
        buttons, allow = list(request.components), button(request, "Allow")

        clicks = [await server.click(operator, request, allow) for _ in range(2)]  # a double click
        answers = sorted([(await answer(click)).content for click in clicks])
        assert "Allowed and queued" in answers[0]
        assert "under way" in answers[1] or "already allowed" in answers[1], answers[1]
        await server.wait_for_message(world.channel, has_buttons("U1"), timeout=20)

        request.components = buttons  # as if the bot died before taking the buttons off: Allow once more
        again = await server.click(operator, request, allow)
        assert "already allowed" in (await answer(again)).content
        assert request.custom_ids == []
        jobs = await bot.store.recent_jobs(alice.id)
        assert len(jobs) == 1 and jobs[0].status is JobStatus.SUCCEEDED
        moves = [e.kind.value for e in await bot.store.ledger(alice.id) if e.job_id]
        assert len(moves) == len(set(moves)), moves  # one reservation, one settlement
