"""Issue 2's proof: `python -m bot`, unmodified, from /imagine to a 2x2 grid on a real tiny diffusers model."""

from __future__ import annotations

from pathlib import Path

import pytest

from quotas import QuotaSettings, QuotaStore
from tests.e2e.conftest import World, has_buttons, image_size

pytestmark = pytest.mark.e2e

ALLOWANCE = 600.0


async def test_imagine_posts_a_grid_charges_the_quota_and_u1_posts_one_image(
    world: World, start_bot, tiny_model_dir: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    # Bob's allowance is spent before the bot starts (an operator took it all back).
    store = await QuotaStore.open(data_dir / "songe.sqlite3", settings=QuotaSettings(free_trial_seconds=ALLOWANCE))
    await store.grant(world.bob.id, -10_000, operator_id=world.operator.id, reason="spent")
    await store.close()

    bot = await start_bot(data_dir, SONGE_MODEL=str(tiny_model_dir), SONGE_FREE_SECONDS=str(ALLOWANCE))
    server, channel = world.server, world.channel

    itx = await server.slash(world.alice, channel, "imagine", prompt="a red fox in the snow --ar 3:2 --seed 7")
    response = await itx.response(timeout=10)
    assert response.deferred
    assert response.elapsed < 3.0

    grid_message = await server.wait_for_message(
        channel, has_buttons("U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"), timeout=120
    )
    assert f"<@{world.alice.id}>" in grid_message.content
    assert "a red fox in the snow" in grid_message.content and "--seed 7" in grid_message.content
    assert any(cid.startswith("songe:reroll:") for cid in grid_message.custom_ids)
    (attachment,) = grid_message.attachments
    assert attachment.filename.endswith(".png")
    width, height = image_size(attachment.data)
    assert width > height  # 3:2
    accepted = await itx.original()
    assert accepted.ephemeral and "queued" in accepted.content

    # U1: the first image alone, half the grid's width and height.
    u1 = next(cid for cid in grid_message.custom_ids if cid.startswith("songe:u:"))
    click = await server.click(world.alice, grid_message, u1)
    single = await click.original(timeout=30)
    assert image_size(single.attachments[0].data) == (width // 2, height // 2)
    assert "Upscale (Subtle)" in single.labels

    # Bob is out of time: an ephemeral refusal, and no job.
    before = len(server.messages(channel))
    refused = await server.slash(world.bob, channel, "imagine", prompt="a blue whale")
    answer = await refused.original(timeout=10)
    assert answer.ephemeral
    assert "out of fast time" in answer.content
    assert len(server.messages(channel)) == before

    await bot.terminate()
    store = await QuotaStore.open(data_dir / "songe.sqlite3")
    try:
        account = await store.account(world.alice.id)
        assert 0 < account.lifetime_gpu_seconds
        assert account.total_remaining < ALLOWANCE
        assert account.total_remaining == pytest.approx(ALLOWANCE - account.lifetime_gpu_seconds, abs=0.01)
        assert (await store.account(world.bob.id)).lifetime_images == 0
    finally:
        await store.close()
    assert world.server.token not in bot.log()


async def test_bot_refuses_to_start_without_a_token_or_with_a_bad_model(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.e2e.conftest import REPO

    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    missing_token = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing_token.returncode != 0
    assert missing_token.stderr.strip().count("\n") == 0 and "DISCORD_TOKEN" in missing_token.stderr

    empty = tmp_path / "empty-model"
    empty.mkdir()
    for model in (str(tmp_path / "no-such-folder"), str(empty)):
        bad_model = subprocess.run(
            [sys.executable, "-m", "bot"],
            cwd=tmp_path,
            env={**base, "PYTHONPATH": str(REPO), "DISCORD_TOKEN": "x", "SONGE_MODEL": model},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert bad_model.returncode != 0
        assert bad_model.stderr.strip().count("\n") == 0 and "SONGE_MODEL" in bad_model.stderr
