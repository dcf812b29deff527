"""/upscale (a recent job picked by autocomplete, or an attached image), the Upscale and Vary message menus,
and /imagine with an image prompt, end to end on the in-process bot and a fake engine."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from pipelines.types import Operation
from tests.e2e.conftest import World, fake_queue, songe_inprocess
from tests.e2e.results_support import (
    SeeingEngine,
    accepted_job,
    button,
    colour_at,
    full_job_id,
    imagine,
    ledger_jobs,
    result_message,
    size_of,
)

pytestmark = pytest.mark.e2e


def png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


async def test_upscale_command_offers_recent_jobs_and_upscales_the_chosen_image(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        server, channel = world.server, world.channel
        grid = await imagine(server, world.alice, channel, "a paper boat --ar 3:2 --seed 31")
        job_id = full_job_id(grid)
        choices = await server.autocomplete(world.alice, channel, "upscale", focused="job", value="")
        assert job_id in [choice["value"] for choice in choices]
        assert any("a paper boat" in choice["name"] for choice in choices)
        narrowed = await server.autocomplete(world.alice, channel, "upscale", focused="job", value=job_id[:5])
        assert [choice["value"] for choice in narrowed] == [job_id]
        assert await server.autocomplete(world.bob, channel, "upscale", focused="job", value="") == []

        width, height = size_of(grid.attachments[0].data)
        for index, kind, strength in ((3, "creative", 0.35), (1, "subtle", 0.0)):
            itx = await server.slash(world.alice, channel, "upscale", job=job_id, index=index, kind=kind)
            upscaled = await result_message(server, channel, await accepted_job(itx))
            request = engine.seen[full_job_id(upscaled)]
            assert request.operation is Operation.UPSCALE and request.strength == pytest.approx(strength)
            assert request.source_image == bot.files.read(job_id, index - 1)
            assert size_of(upscaled.attachments[0].data) == (width, height)  # 2x of one image = the grid's size

        bob_tries = await server.slash(world.bob, channel, "upscale", job="0123456789abcdef")
        refusal = await bob_tries.original(timeout=10)
        assert refusal.ephemeral and "I do not know that job" in refusal.content


async def test_upscale_command_localises_each_option(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(SeeingEngine())):
        (upscale,) = [c for c in world.server.commands(world.guild) if c["name"] == "upscale"]
        options = {option["name"]: option for option in upscale["options"]}
        for locale in ("en-US", "fr"):
            assert "1" in options["index"]["description_localizations"][locale]  # "1 to 4"
            assert "1" not in options["image"]["description_localizations"][locale]


async def test_upscale_of_an_attached_image_doubles_it(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        server, channel = world.server, world.channel
        itx = await server.slash(world.alice, channel, "upscale", image=("holiday.png", png((48, 32), (200, 40, 10))))
        upscaled = await result_message(server, channel, await accepted_job(itx))
        request = engine.seen[full_job_id(upscaled)]
        assert request.operation is Operation.UPSCALE and request.source_image is not None
        assert colour_at(request.source_image, 5, 5) == (200, 40, 10)
        assert size_of(upscaled.attachments[0].data) == (96, 64)
        assert "holiday.png" in upscaled.content
        assert full_job_id(upscaled) in await ledger_jobs(bot.store, world.alice)


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("notes.txt", b"this is not a picture at all", "not an image"),
        ("huge.png", b"\x89PNG" + bytes(21 * 1024 * 1024), "too large"),
        ("bomb.png", png((8000, 6000), (0, 0, 0)), "too many pixels"),
    ],
)
async def test_a_bad_attachment_is_refused_and_nothing_is_charged(
    world: World, tmp_path: Path, name: str, data: bytes, says: str
) -> None:
    world.server.world.attachment_size_limit = 64 * 1024 * 1024  # let the fake take it; the bot must refuse
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        before = await bot.store.account(world.alice.id)
        for command, values in (("upscale", {}), ("imagine", {"prompt": "like this one"})):
            itx = await world.server.slash(world.alice, world.channel, command, image=(name, data), **values)
            refusal = await itx.original(timeout=10)
            assert refusal.ephemeral and says in refusal.content
        assert world.server.messages(world.channel) == []
        assert engine.seen == {}
        assert await ledger_jobs(bot.store, world.alice) == set()
        assert await bot.store.recent_jobs(world.alice.id) == []
        assert (await bot.store.account(world.alice.id)).total_remaining == before.total_remaining


async def test_upscale_and_vary_message_menus_work_on_a_result(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        server, channel = world.server, world.channel
        grid = await imagine(server, world.alice, channel, "a snowy owl --seed 17")
        job_id = full_job_id(grid)
        single = await (await server.click(world.alice, grid, button(grid, "u", 3))).original(timeout=10)

        menu = await server.context_menu(world.bob, single, "Upscale")
        upscaled = await result_message(server, channel, await accepted_job(menu))
        request = engine.seen[full_job_id(upscaled)]
        assert request.operation is Operation.UPSCALE and request.source_image == bot.files.read(job_id, 2)
        assert request.user_id == world.bob.id
        assert size_of(upscaled.attachments[0].data) == size_of(grid.attachments[0].data)

        menu = await server.context_menu(world.bob, grid, "Vary")
        varied = await result_message(server, channel, await accepted_job(menu))
        request = engine.seen[full_job_id(varied)]
        assert request.operation is Operation.IMAGE_TO_IMAGE and request.source_image == bot.files.read(job_id, 0)
        assert await ledger_jobs(bot.store, world.bob) == {full_job_id(upscaled), full_job_id(varied)}


async def test_message_menus_refuse_a_message_that_is_not_a_result(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        chatter = await world.server.say(world.alice, world.channel, "look at my cat")
        for name in ("Upscale", "Vary"):
            itx = await world.server.context_menu(world.alice, chatter, name)
            refusal = await itx.original(timeout=10)
            assert refusal.ephemeral and "not a Songe result" in refusal.content
        assert engine.seen == {} and await ledger_jobs(bot.store, world.alice) == set()


async def test_imagine_with_an_attached_image_starts_from_it(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)):
        server, channel = world.server, world.channel
        source = png((40, 40), (10, 120, 230))
        itx = await server.slash(
            world.alice, channel, "imagine", prompt="the same, at night --seed 2", image=("start.png", source)
        )
        grid = await result_message(server, channel, await accepted_job(itx))
        request = engine.seen[full_job_id(grid)]
        assert request.operation is Operation.IMAGE_TO_IMAGE and request.prompt == "the same, at night"
        assert request.source_image is not None and colour_at(request.source_image, 20, 20) == (10, 120, 230)
        assert 0 < request.strength < 1 and request.count == 4
        assert "U1" in grid.labels
