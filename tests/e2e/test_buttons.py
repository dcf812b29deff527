"""Every button under a result, end to end: the real bot, discord.py and the fake Discord server.

Most tests run the in-process bot on a `SeeingEngine`, which paints each image in a colour derived
from (prompt, seed) at the requested size and keeps the requests it ran; the last one runs the real
operations on the tiny diffusers model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.job_types import Envelope
from pipelines.fake import fake_colour
from pipelines.seeds import image_seeds
from pipelines.types import Box, GenerationRequest, Operation
from quotas import JobStatus
from tests.e2e.conftest import World, fake_queue, songe_inprocess
from tests.e2e.results_support import (
    SeeingEngine,
    accepted_job,
    button,
    colour_at,
    delivered,
    full_job_id,
    imagine,
    ledger_jobs,
    modal_inputs,
    quadrant_colours,
    result_message,
    size_of,
)
from tests.support.fake_discord import FakeMessage, FakeUser
from tests.support.fake_discord.messages import walk_components

pytestmark = pytest.mark.e2e


def colours(request: GenerationRequest) -> list[tuple[int, int, int]]:
    """The colour the fake engine paints each image of `request`."""
    return [fake_colour(request.prompt, seed) for seed in image_seeds(request.seed, request.count)]


async def click_job(world: World, user: FakeUser, message: FakeMessage, custom_id: str) -> FakeMessage:
    """Click a charged button; the result it produced."""
    itx = await world.server.click(user, message, custom_id)
    return await result_message(world.server, world.channel, await accepted_job(itx))


async def test_u1_to_u4_post_each_image_alone_at_half_the_grid_size(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        grid = await imagine(world.server, world.alice, world.channel, "a red fox --ar 3:2 --seed 7")
        request = engine.seen[full_job_id(grid)]
        grid_size = size_of(grid.attachments[0].data)
        assert grid_size == (2 * request.width, 2 * request.height) and request.width > request.height
        assert quadrant_colours(grid.attachments[0].data) == colours(request)
        for index, user in ((1, world.alice), (2, world.bob), (3, world.alice), (4, world.bob)):
            click = await world.server.click(user, grid, button(grid, "u", index))
            single = await click.original(timeout=10)
            assert not single.ephemeral
            (attachment,) = single.attachments
            assert size_of(attachment.data) == (grid_size[0] // 2, grid_size[1] // 2)
            assert colour_at(attachment.data, 0, 0) == colours(request)[index - 1]
            assert {"Upscale (Subtle)", "Vary (Region)", "Zoom Out 2x", "Make Square"} <= set(single.labels)
            assert button(single, "ups").endswith(f":{index}")
        # U buttons are free: nothing queued, nobody charged beyond alice's grid.
        assert len(engine.seen) == 1
        assert (await bot.store.account(world.bob.id)).lifetime_images == 0
        assert await ledger_jobs(bot.store, world.bob) == set()


async def test_v1_to_v4_vary_the_chosen_image_and_charge_whoever_clicked(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        grid = await imagine(world.server, world.alice, world.channel, "a lighthouse --seed 40")
        parent = engine.seen[full_job_id(grid)]
        for index, user in ((1, world.bob), (2, world.alice), (3, world.bob), (4, world.alice)):
            variation = await click_job(world, user, grid, button(grid, "v", index))
            job_id = full_job_id(variation)
            request = engine.seen[job_id]
            assert request.operation is Operation.IMAGE_TO_IMAGE and request.strength == pytest.approx(0.7)
            assert request.prompt == parent.prompt and request.count == 4 and request.user_id == user.id
            assert colour_at(request.source_image or b"", 0, 0) == colours(parent)[index - 1]
            assert size_of(variation.attachments[0].data) == size_of(grid.attachments[0].data)
            assert quadrant_colours(variation.attachments[0].data) == colours(request)
            assert f"<@{user.id}>" in variation.content
            record = await bot.store.job(job_id)
            assert record is not None and record.user_id == user.id and record.parent_job_id == full_job_id(grid)
            assert job_id in await ledger_jobs(bot.store, user)
        bob = await bot.store.account(world.bob.id)
        assert bob.lifetime_images == 8 and bob.lifetime_gpu_seconds >= 0
        assert (await bot.store.account(world.alice.id)).lifetime_images == 12


async def test_reroll_runs_the_same_prompt_with_a_new_seed(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        grid = await imagine(world.server, world.alice, world.channel, "a quiet harbour --ar 2:3 --seed 5")
        parent = engine.seen[full_job_id(grid)]
        again = await click_job(world, world.bob, grid, button(grid, "reroll"))
        request = engine.seen[full_job_id(again)]
        assert request.operation is Operation.TEXT_TO_IMAGE and request.prompt == parent.prompt
        assert (request.width, request.height) == (parent.width, parent.height) and request.seed != parent.seed
        assert again.attachments[0].data != grid.attachments[0].data
        assert size_of(again.attachments[0].data) == size_of(grid.attachments[0].data)
        assert quadrant_colours(again.attachments[0].data) == colours(request)
        assert full_job_id(again) in await ledger_jobs(bot.store, world.bob)
        assert full_job_id(again) not in await ledger_jobs(bot.store, world.alice)


async def single_image(world: World, engine: SeeingEngine, prompt: str, index: int = 2) -> tuple[FakeMessage, str]:
    """Alice's grid for `prompt`, then U`index`: the single-image message and the grid's job id."""
    grid = await imagine(world.server, world.alice, world.channel, prompt)
    click = await world.server.click(world.alice, grid, button(grid, "u", index))
    return await click.original(timeout=10), full_job_id(grid)


async def test_upscale_subtle_and_creative_double_the_size(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        single, parent_id = await single_image(world, engine, "a castle --ar 3:2 --seed 11", index=3)
        width, height = size_of(single.attachments[0].data)
        for action, user, strength in (("ups", world.alice, 0.0), ("upc", world.bob, 0.35)):
            upscaled = await click_job(world, user, single, button(single, action))
            request = engine.seen[full_job_id(upscaled)]
            assert request.operation is Operation.UPSCALE and request.count == 1
            assert request.strength == pytest.approx(strength)
            assert request.source_image == bot.files.read(parent_id, 2)
            (attachment,) = upscaled.attachments
            assert size_of(attachment.data) == (2 * width, 2 * height)
            assert "Upscale (Subtle)" in upscaled.labels and "U1" not in upscaled.labels
            assert full_job_id(upscaled) in await ledger_jobs(bot.store, user)
        assert (await bot.store.account(world.bob.id)).lifetime_images == 1


async def test_vary_subtle_and_strong_vary_the_single_image(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        single, parent_id = await single_image(world, engine, "a meadow --seed 3", index=4)
        for action, user, strength in (("vsub", world.bob, 0.35), ("vstr", world.alice, 0.7)):
            varied = await click_job(world, user, single, button(single, action))
            request = engine.seen[full_job_id(varied)]
            assert request.operation is Operation.IMAGE_TO_IMAGE and request.strength == pytest.approx(strength)
            assert request.source_image == bot.files.read(parent_id, 3) and request.count == 4
            assert "V1" in varied.labels
            assert size_of(varied.attachments[0].data) == tuple(2 * s for s in size_of(single.attachments[0].data))
            assert full_job_id(varied) in await ledger_jobs(bot.store, user)


async def test_vary_region_inpaints_the_box_given_in_the_modal(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        single, parent_id = await single_image(world, engine, "a cat on a sofa --ar 2:1 --seed 9", index=1)
        width, height = size_of(single.attachments[0].data)
        opened = await world.server.click(world.bob, single, button(single, "vreg"))
        prompt_id, region_id = await modal_inputs(opened)
        assert opened.modal is not None and opened.modal["title"] == "Vary (Region)"

        bad = await world.server.submit_modal(world.bob, opened, None, {prompt_id: "a dog", region_id: "75,25,25,75"})
        refusal = await bad.original(timeout=10)
        assert refusal.ephemeral and "left,top,right,bottom" in refusal.content

        opened = await world.server.click(world.bob, single, button(single, "vreg"))
        prompt_id, region_id = await modal_inputs(opened)
        submit = await world.server.submit_modal(
            world.bob, opened, None, {prompt_id: "a sleeping dog", region_id: "25,25,75,75"}
        )
        result = await result_message(world.server, world.channel, await accepted_job(submit))
        request = engine.seen[full_job_id(result)]
        assert request.operation is Operation.INPAINT and request.prompt == "a sleeping dog"
        assert request.region == Box(width // 4, height // 4, 3 * width // 4, 3 * height // 4)
        assert (request.width, request.height) == (width, height) and request.user_id == world.bob.id
        assert request.source_image == bot.files.read(parent_id, 0)
        assert "a sleeping dog" in result.content
        assert await ledger_jobs(bot.store, world.bob) == {full_job_id(result)}


async def test_zoom_out_centres_the_image_on_a_larger_view(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        single, _ = await single_image(world, engine, "a tower --seed 21")
        width, height = size_of(single.attachments[0].data)
        for action, factor in (("zoom2", 2.0), ("zoom15", 1.5)):
            zoomed = await click_job(world, world.bob, single, button(single, action))
            request = engine.seen[full_job_id(zoomed)]
            assert request.operation is Operation.OUTPAINT and request.placement is not None
            placed = request.placement
            # The view is `factor` times the image: the image covers 1/factor of each side, centred.
            assert placed.width / request.width == pytest.approx(1 / factor, abs=0.06)
            assert placed.height / request.height == pytest.approx(1 / factor, abs=0.06)
            assert abs(placed.left - (request.width - placed.right)) <= 1
            assert abs(placed.top - (request.height - placed.bottom)) <= 1
            assert request.width * request.height <= width * height  # the model's pixel budget is kept
            assert size_of(zoomed.attachments[0].data) == (2 * request.width, 2 * request.height)

        opened = await world.server.click(world.alice, single, button(single, "zoomc"))
        prompt_id, factor_id = await modal_inputs(opened)
        bad = await world.server.submit_modal(world.alice, opened, None, {prompt_id: "a tower", factor_id: "3"})
        refusal = await bad.original(timeout=10)
        assert refusal.ephemeral and "from 1.0 to 2.0" in refusal.content
        opened = await world.server.click(world.alice, single, button(single, "zoomc"))
        prompt_id, factor_id = await modal_inputs(opened)
        good = await world.server.submit_modal(
            world.alice, opened, None, {prompt_id: "a tower in fog", factor_id: "1.25"}
        )
        zoomed = await result_message(world.server, world.channel, await accepted_job(good))
        request = engine.seen[full_job_id(zoomed)]
        assert request.operation is Operation.OUTPAINT and request.prompt == "a tower in fog"
        assert request.placement is not None and request.placement.width / request.width == pytest.approx(0.8, abs=0.06)
        assert len(engine.seen) == 4  # the refused factor queued nothing
        assert len(await ledger_jobs(bot.store, world.bob)) == 2


async def test_make_square_turns_a_wide_image_square(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)):
        single, _ = await single_image(world, engine, "a wide beach --ar 16:9 --seed 2")
        width, height = size_of(single.attachments[0].data)
        assert width > height
        squared = await click_job(world, world.alice, single, button(single, "square"))
        request = engine.seen[full_job_id(squared)]
        assert request.operation is Operation.OUTPAINT and request.width == request.height
        placed = request.placement
        assert placed is not None and placed.width == request.width and placed.height < request.height
        assert placed.width / placed.height == pytest.approx(width / height, rel=0.05)
        grid_width, grid_height = size_of(squared.attachments[0].data)
        assert grid_width == grid_height == 2 * request.width


@pytest.mark.parametrize(
    ("action", "wider", "edge"),
    [("panl", True, "right"), ("panr", True, "left"), ("panu", False, "bottom"), ("pand", False, "top")],
)
async def test_pan_grows_the_canvas_in_the_arrows_direction(
    world: World, tmp_path: Path, action: str, wider: bool, edge: str
) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)):
        single, _ = await single_image(world, engine, "a long road --seed 8")
        width, height = size_of(single.attachments[0].data)
        assert width == height
        panned = await click_job(world, world.bob, single, button(single, action))
        request = engine.seen[full_job_id(panned)]
        assert request.operation is Operation.OUTPAINT and request.placement is not None
        assert (request.width > request.height) is wider and request.width != request.height
        placed = request.placement
        # The image keeps to the far side; the new strip is on the side the arrow points to.
        touching = {
            "left": placed.left == 0,
            "right": placed.right == request.width,
            "top": placed.top == 0,
            "bottom": placed.bottom == request.height,
        }
        assert (
            touching[edge] and not touching[{"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[edge]]
        )
        assert size_of(panned.attachments[0].data) == (2 * request.width, 2 * request.height)


async def test_remix_edits_the_prompt_of_a_variation(world: World, tmp_path: Path) -> None:
    engine = SeeingEngine()
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(engine)) as bot:
        single, parent_id = await single_image(world, engine, "a red car --seed 4", index=2)
        opened = await world.server.click(world.bob, single, button(single, "remix"))
        (prompt_id,) = await modal_inputs(opened)
        field = next(c for c in walk_components(opened.modal["components"]) if c.get("custom_id") == prompt_id)
        assert field.get("value") == "a red car"  # the modal starts from the old prompt
        submit = await world.server.submit_modal(world.bob, opened, None, {prompt_id: "a blue bicycle"})
        remixed = await result_message(world.server, world.channel, await accepted_job(submit))
        request = engine.seen[full_job_id(remixed)]
        assert request.operation is Operation.IMAGE_TO_IMAGE and request.prompt == "a blue bicycle"
        assert request.source_image == bot.files.read(parent_id, 1)
        assert "a blue bicycle" in remixed.content and "a red car" not in remixed.content
        assert quadrant_colours(remixed.attachments[0].data) == colours(request)
        assert full_job_id(remixed) in await ledger_jobs(bot.store, world.bob)


async def test_the_real_operations_run_through_the_bot_on_a_tiny_diffusers_model(
    world: World, tmp_path: Path, tiny_model_dir: Path
) -> None:
    async with songe_inprocess(world, tmp_path / "data", SONGE_MODEL=str(tiny_model_dir)) as bot:
        server, channel = world.server, world.channel
        grid = await imagine(server, world.alice, channel, "a small robot --seed 12")
        grid_width, grid_height = size_of(grid.attachments[0].data)
        width, height = grid_width // 2, grid_height // 2
        single = await (await server.click(world.alice, grid, button(grid, "u", 1))).original(timeout=30)
        assert size_of(single.attachments[0].data) == (width, height)

        upscaled = await click_job(world, world.bob, single, button(single, "ups"))
        assert size_of(upscaled.attachments[0].data) == (2 * width, 2 * height)
        zoomed = await click_job(world, world.alice, single, button(single, "zoom2"))
        assert size_of(zoomed.attachments[0].data) == (grid_width, grid_height)  # four images, same pixel budget
        opened = await server.click(world.alice, single, button(single, "vreg"))
        prompt_id, region_id = await modal_inputs(opened)
        submit = await server.submit_modal(
            world.alice, opened, None, {prompt_id: "a robot with a hat", region_id: "25,25,75,75"}
        )
        region = await result_message(server, channel, await accepted_job(submit), timeout=60)
        assert size_of(region.attachments[0].data) == (grid_width, grid_height)

        kinds = {}
        for message in (grid, upscaled, zoomed, region):
            record = await delivered(bot.store, full_job_id(message))
            assert record.status is JobStatus.SUCCEEDED
            assert record.gpu_seconds is not None and record.gpu_seconds > 0
            kinds[record.kind] = Envelope.loads(record.request).request.operation
        assert kinds == {
            "imagine": Operation.TEXT_TO_IMAGE,
            "upscale": Operation.UPSCALE,
            "zoom": Operation.OUTPAINT,
            "region": Operation.INPAINT,
        }
        assert (await bot.store.account(world.bob.id)).lifetime_images == 1
