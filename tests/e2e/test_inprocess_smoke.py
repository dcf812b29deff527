"""The in-process bot on a fake engine: the fixture other end-to-end tests build on."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.fake import FakeEngine
from tests.e2e.conftest import World, fake_queue, has_buttons, image_size, songe_inprocess

pytestmark = pytest.mark.e2e


async def test_a_variation_is_charged_to_whoever_clicked(world: World, tmp_path: Path) -> None:
    async with songe_inprocess(world, tmp_path / "data", queue_factory=fake_queue(FakeEngine())) as bot:
        server, channel = world.server, world.channel
        await server.slash(world.alice, channel, "imagine", prompt="a lighthouse --ar 16:9")
        grid = await server.wait_for_message(channel, has_buttons("U1", "V1"), timeout=30)
        width, height = image_size(grid.attachments[0].data)
        v2 = next(cid for cid in grid.custom_ids if cid.startswith("songe:v:") and cid.endswith(":2"))
        await server.click(world.bob, grid, v2)
        variation = await server.wait_for_message(
            channel,
            lambda m: has_buttons("U1")(m) and m.id != grid.id and f"<@{world.bob.id}>" in m.content,
            timeout=30,
        )
        assert image_size(variation.attachments[0].data) == (width, height)
        bob = await bot.store.account(world.bob.id)
        alice = await bot.store.account(world.alice.id)
        assert bob.lifetime_images == 4 and alice.lifetime_images == 4
